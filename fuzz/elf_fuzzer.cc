// ParseElf on arbitrary bytes, then everything that reads its result:
// ClassifySection for every section, ProtectedRanges, CheckNoWritableCode,
// CheckLibrarySearchPaths and LoaderPaths, and PlanProtectedElf (what the server decides before sealing a program,
// and what `sealdrop inspect` shows of a stored package).
//
// Checks beyond crashes, from package/elf.h's promises:
//  - every section and segment ParseElf returns lies inside the file;
//  - ProtectedRanges, when it succeeds, returns non-empty, sorted, disjoint,
//    non-touching ranges inside the file that cover every encrypted section
//    and overlap no plaintext section, the ELF header or a header table;
//  - a program CheckLibrarySearchPaths accepts has only absolute loader
//    paths without loader variables;
//  - PlanProtectedElf agrees with the pieces it is made of, and its hash is
//    PlainPartsHash over the same ranges.
#include <elf.h>

#include <cstdint>

#include "fuzz_util.h"
#include "package/elf.h"
#include "package/protected_elf.h"

using namespace sealdrop;

namespace {
bool Inside(uint64_t offset, uint64_t size, uint64_t file_size) {
  return offset <= file_size && size <= file_size - offset;
}
bool Overlap(uint64_t a, uint64_t an, uint64_t b, uint64_t bn) {
  return an != 0 && bn != 0 && a < b + bn && b < a + an;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteView file(data, size);
  (void)LooksLikeElf(file);
  auto image = ParseElf(file);
  auto plan = PlanProtectedElf(file);
  if (!image) {
    FUZZ_CHECK(!plan.has_value(), "PlanProtectedElf accepted a file ParseElf refused");
    return 0;
  }
  const ElfImage& img = *image;
  FUZZ_CHECK(Inside(img.phdr_offset, img.phdr_size, size) && Inside(img.shdr_offset, img.shdr_size, size),
             "a header table lies outside the file");
  FUZZ_CHECK(img.shstrndx < img.sections.size(), "shstrndx out of range");
  for (const ElfSegment& seg : img.segments)
    FUZZ_CHECK(Inside(seg.offset, seg.file_size, size), "a segment lies outside the file");
  for (const ElfSection& s : img.sections)
    FUZZ_CHECK(s.size == 0 || Inside(s.offset, s.size, size), "section " + s.name + " lies outside the file");

  std::vector<bool> encrypted(img.sections.size());
  for (size_t i = 0; i < img.sections.size(); ++i) {
    SectionRule rule = ClassifySection(img, i);
    encrypted[i] = rule.encrypted;
    FUZZ_CHECK(rule.encrypted == rule.reason.empty(), "a plaintext section needs a reason, an encrypted one none");
    FUZZ_CHECK(!rule.encrypted || img.sections[i].size != 0, "an empty section is encrypted");
  }

  auto ranges = ProtectedRanges(img, size);
  if (ranges) {
    FUZZ_CHECK(!ranges->empty(), "ProtectedRanges succeeded with nothing to encrypt");
    for (size_t i = 0; i < ranges->size(); ++i) {
      const FileRange& r = (*ranges)[i];
      FUZZ_CHECK(r.size > 0 && Inside(r.offset, r.size, size), "a range is empty or outside the file");
      if (i > 0) {
        const FileRange& p = (*ranges)[i - 1];
        FUZZ_CHECK(r.offset > p.offset + p.size, "ranges are unsorted, overlapping or touching");
      }
      FUZZ_CHECK(!Overlap(r.offset, r.size, 0, img.header_size) &&
                     !Overlap(r.offset, r.size, img.phdr_offset, img.phdr_size) &&
                     !Overlap(r.offset, r.size, img.shdr_offset, img.shdr_size),
                 "a range overlaps the ELF header or a header table");
      for (size_t k = 0; k < img.sections.size(); ++k)
        if (!encrypted[k])
          FUZZ_CHECK(!Overlap(r.offset, r.size, img.sections[k].offset, img.sections[k].size),
                     "a range overlaps plaintext section " + img.sections[k].name);
      for (const ElfSegment& seg : img.segments)
        if (seg.type == PT_INTERP || seg.type == PT_DYNAMIC || seg.type == PT_NOTE)
          FUZZ_CHECK(!Overlap(r.offset, r.size, seg.offset, seg.file_size),
                     "a range overlaps a segment the loader reads");
    }
    for (size_t k = 0; k < img.sections.size(); ++k) {
      if (!encrypted[k]) continue;
      const ElfSection& s = img.sections[k];
      bool covered = false;
      for (const FileRange& r : *ranges)
        covered |= s.offset >= r.offset && s.offset + s.size <= r.offset + r.size;
      FUZZ_CHECK(covered, "encrypted section " + s.name + " is not inside one range");
    }
  }
  auto writable = CheckNoWritableCode(img);
  auto searched = CheckLibrarySearchPaths(img);
  for (const LoaderPath& p : LoaderPaths(img))
    FUZZ_CHECK(!searched || (p.path.starts_with('/') && p.path.find('$') == std::string::npos),
               "CheckLibrarySearchPaths accepted the loader path " + p.path);

  FUZZ_CHECK(plan.has_value() == (writable.has_value() && searched.has_value() && ranges.has_value() &&
                                  ranges->size() <= kMaxProtectedRanges),
             "PlanProtectedElf disagrees with CheckNoWritableCode/CheckLibrarySearchPaths/ProtectedRanges");
  if (plan) {
    FUZZ_CHECK(plan->ranges == *ranges, "PlanProtectedElf's ranges differ");
    FUZZ_CHECK(plan->plain_sha256 == PlainPartsHash(file, plan->ranges) && plan->plain_sha256.size() == 32,
               "PlanProtectedElf's hash differs from PlainPartsHash");
  }
  return 0;
}
