#include "package/elf.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <string_view>

#include "base/files.h"

namespace sealdrop {
namespace {

// Test inputs: programs present on every Debian machine, never built at test
// time. /proc/self/exe is this test binary (a PIE C++ program with debug
// sections in most build types); /bin/true is a small stripped PIE C program.
const Bytes& SelfExe() {
  static const Bytes* file = [] {
    auto b = ReadFile("/proc/self/exe", size_t{1} << 31);
    if (!b) {
      ADD_FAILURE() << b.error().message;
      return new Bytes;
    }
    return new Bytes(std::move(*b));
  }();
  return *file;
}

const Bytes& TrueExe() {
  static const Bytes* file = [] {
    const char* path = ::access("/bin/true", R_OK) == 0 ? "/bin/true" : "/usr/bin/true";
    auto b = ReadFile(path, size_t{1} << 30);
    if (!b) {
      ADD_FAILURE() << b.error().message;
      return new Bytes;
    }
    return new Bytes(std::move(*b));
  }();
  return *file;
}

template <typename T>
T LoadAt(const Bytes& b, uint64_t offset) {
  T v;
  std::memcpy(&v, b.data() + offset, sizeof(T));
  return v;
}

template <typename T>
void StoreAt(Bytes& b, uint64_t offset, const T& v) {
  std::memcpy(b.data() + offset, &v, sizeof(T));
}

Elf64_Ehdr Ehdr(const Bytes& b) { return LoadAt<Elf64_Ehdr>(b, 0); }

uint64_t PhdrAt(const Bytes& b, size_t i) { return Ehdr(b).e_phoff + i * sizeof(Elf64_Phdr); }
uint64_t ShdrAt(const Bytes& b, size_t i) { return Ehdr(b).e_shoff + i * sizeof(Elf64_Shdr); }

void EditEhdr(Bytes& b, const std::function<void(Elf64_Ehdr&)>& f) {
  auto h = Ehdr(b);
  f(h);
  StoreAt(b, 0, h);
}
void EditPhdr(Bytes& b, size_t i, const std::function<void(Elf64_Phdr&)>& f) {
  auto p = LoadAt<Elf64_Phdr>(b, PhdrAt(b, i));
  f(p);
  StoreAt(b, PhdrAt(b, i), p);
}
void EditShdr(Bytes& b, size_t i, const std::function<void(Elf64_Shdr&)>& f) {
  auto s = LoadAt<Elf64_Shdr>(b, ShdrAt(b, i));
  f(s);
  StoreAt(b, ShdrAt(b, i), s);
}

// Index of the first program header of `type`, or -1.
int SegmentIndex(const Bytes& b, uint32_t type) {
  for (size_t i = 0; i < Ehdr(b).e_phnum; ++i)
    if (LoadAt<Elf64_Phdr>(b, PhdrAt(b, i)).p_type == type) return static_cast<int>(i);
  return -1;
}

// Index of the section named `name`, or -1.
int SectionIndex(const ElfImage& img, std::string_view name) {
  for (size_t i = 0; i < img.sections.size(); ++i)
    if (img.sections[i].name == name) return static_cast<int>(i);
  return -1;
}

ElfImage MustParse(ByteView file) {
  auto img = ParseElf(file);
  EXPECT_TRUE(img.has_value()) << img.error().message;
  return img ? std::move(*img) : ElfImage{};
}

// File offset of the first .dynamic entry with tag `tag`, or 0.
uint64_t DynamicEntryAt(const Bytes& b, const ElfImage& img, int64_t tag) {
  int d = SectionIndex(img, ".dynamic");
  if (d < 0) return 0;
  const ElfSection& s = img.sections[d];
  for (uint64_t off = 0; off + sizeof(Elf64_Dyn) <= s.size; off += sizeof(Elf64_Dyn)) {
    auto dyn = LoadAt<Elf64_Dyn>(b, s.offset + off);
    if (dyn.d_tag == tag) return s.offset + off;
    if (dyn.d_tag == DT_NULL) break;
  }
  return 0;
}

bool IsParseErrorCode(ErrorCode c) {
  return c == ErrorCode::kMalformed || c == ErrorCode::kInvalidArgument || c == ErrorCode::kTooLarge;
}

// Expects ParseElf to fail on `b` with `code`.
void ExpectParseFails(const Bytes& b, ErrorCode code, const std::string& what,
                      std::string_view message_part = {}) {
  auto r = ParseElf(b);
  ASSERT_FALSE(r.has_value()) << what << ": parsed although it should not";
  EXPECT_EQ(r.error().code, code) << what << ": " << r.error().message;
  EXPECT_FALSE(r.error().message.empty()) << what;
  if (!message_part.empty()) {
    EXPECT_NE(r.error().message.find(message_part), std::string::npos) << what << ": " << r.error().message;
  }
}

bool RangesOverlap(uint64_t a_off, uint64_t a_size, uint64_t b_off, uint64_t b_size) {
  return a_size != 0 && b_size != 0 && a_off < b_off + b_size && b_off < a_off + a_size;
}

// ---------------------------------------------------------------------------
// Well-formed programs.

void CheckWellFormedProgram(const Bytes& file, const char* what) {
  SCOPED_TRACE(what);
  ASSERT_GE(file.size(), sizeof(Elf64_Ehdr));
  EXPECT_TRUE(LooksLikeElf(file));
  auto parsed = ParseElf(file);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  const ElfImage& img = *parsed;
  const Elf64_Ehdr eh = Ehdr(file);

  EXPECT_EQ(img.type, ET_DYN);
#if defined(__x86_64__)
  EXPECT_EQ(img.machine, EM_X86_64);
#elif defined(__aarch64__)
  EXPECT_EQ(img.machine, EM_AARCH64);
#endif
  EXPECT_EQ(img.entry, eh.e_entry);
  EXPECT_EQ(img.header_size, sizeof(Elf64_Ehdr));
  EXPECT_EQ(img.phdr_offset, eh.e_phoff);
  EXPECT_EQ(img.phdr_size, uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr));
  EXPECT_EQ(img.shdr_offset, eh.e_shoff);
  EXPECT_EQ(img.shdr_size, uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr));
  EXPECT_EQ(img.shstrndx, eh.e_shstrndx);
  EXPECT_EQ(img.segments.size(), eh.e_phnum);
  EXPECT_EQ(img.sections.size(), eh.e_shnum);
  ASSERT_LT(img.shstrndx, img.sections.size());
  EXPECT_EQ(img.sections[img.shstrndx].name, ".shstrtab");
  EXPECT_EQ(img.sections[0].name, "");
  EXPECT_EQ(img.sections[0].size, 0u);

  EXPECT_TRUE(img.is_dynamic);
  EXPECT_TRUE(img.is_pie);
  EXPECT_FALSE(img.interpreter.empty());
  EXPECT_TRUE(img.interpreter.starts_with("/lib")) << img.interpreter;
  EXPECT_NE(std::find(img.needed.begin(), img.needed.end(), "libc.so.6"), img.needed.end());
  EXPECT_FALSE(img.text_relocations);
  ASSERT_FALSE(img.imports.empty());
  bool glibc_versioned = false;
  for (const ElfSymbol& s : img.imports) {
    EXPECT_FALSE(s.name.empty() && s.version.empty());
    if (s.version.starts_with("GLIBC_")) glibc_versioned = true;
  }
  EXPECT_TRUE(glibc_versioned);

  // Segments and sections lie inside the file.
  for (const ElfSegment& seg : img.segments) {
    EXPECT_LE(seg.offset, file.size());
    EXPECT_LE(seg.file_size, file.size() - seg.offset);
  }
  for (const ElfSection& s : img.sections) {
    if (s.type == SHT_NOBITS) {
      EXPECT_EQ(s.size, 0u) << s.name;
    }
    if (s.size == 0) continue;
    EXPECT_LE(s.offset, file.size()) << s.name;
    EXPECT_LE(s.size, file.size() - s.offset) << s.name;
  }
  bool has_stack = false, has_load_x = false;
  for (const ElfSegment& seg : img.segments) {
    if (seg.type == PT_GNU_STACK) has_stack = true;
    if (seg.type == PT_LOAD && (seg.flags & PF_X)) has_load_x = true;
  }
  EXPECT_TRUE(has_stack);
  EXPECT_TRUE(has_load_x);
}

TEST(ElfParse, SelfExecutable) { CheckWellFormedProgram(SelfExe(), "/proc/self/exe"); }

TEST(ElfParse, BinTrue) { CheckWellFormedProgram(TrueExe(), "/bin/true"); }

TEST(ElfParse, SelfExecutableImportsWhatItCalls) {
  ElfImage img = MustParse(SelfExe());
  // Every C++ test binary linked with libstdc++ imports from it and from libc.
  bool libc_symbol = false;
  for (const ElfSymbol& s : img.imports)
    if (s.version.starts_with("GLIBC_") && !s.name.empty()) libc_symbol = true;
  EXPECT_TRUE(libc_symbol);
  EXPECT_NE(std::find(img.needed.begin(), img.needed.end(), "libstdc++.so.6"), img.needed.end());
}

TEST(ElfParse, TrailingBytesAreAllowed) {
  Bytes b = TrueExe();
  b.resize(b.size() + 4097, 0xa5);
  auto img = ParseElf(b);
  ASSERT_TRUE(img.has_value()) << img.error().message;
  EXPECT_EQ(img->needed, MustParse(TrueExe()).needed);
}

TEST(ElfParse, LooksLikeElf) {
  EXPECT_TRUE(LooksLikeElf(TrueExe()));
  EXPECT_TRUE(LooksLikeElf(AsBytes("\x7f" "ELF")));
  EXPECT_FALSE(LooksLikeElf(AsBytes("\x7f" "EL")));
  EXPECT_FALSE(LooksLikeElf(AsBytes("")));
  EXPECT_FALSE(LooksLikeElf(AsBytes("#!/bin/sh\n")));
  EXPECT_FALSE(LooksLikeElf(AsBytes("\x7f" "ELf")));
}

TEST(ElfParse, PieFlagWithoutInterpreter) {
  // ET_DYN without PT_INTERP and without DF_1_PIE is a shared library, not a PIE.
  Bytes b = TrueExe();
  ElfImage img = MustParse(b);
  int interp = SegmentIndex(b, PT_INTERP);
  ASSERT_GE(interp, 0);
  EditPhdr(b, interp, [](Elf64_Phdr& p) { p.p_type = PT_NULL; });
  uint64_t flags_1 = DynamicEntryAt(b, img, DT_FLAGS_1);
  ASSERT_NE(flags_1, 0u);
  auto with_pie = ParseElf(b);
  ASSERT_TRUE(with_pie.has_value()) << with_pie.error().message;
  EXPECT_TRUE(with_pie->interpreter.empty());
  EXPECT_TRUE(with_pie->is_pie);  // DF_1_PIE alone
  auto d = LoadAt<Elf64_Dyn>(b, flags_1);
  d.d_un.d_val &= ~uint64_t{DF_1_PIE};
  StoreAt(b, flags_1, d);
  auto lib = ParseElf(b);
  ASSERT_TRUE(lib.has_value()) << lib.error().message;
  EXPECT_FALSE(lib->is_pie);
}

TEST(ElfParse, PieByInterpreterWithoutDynamicSection) {
  // elf.h: is_pie is "ET_DYN with DF_1_PIE or an interpreter". An ET_DYN
  // program with PT_INTERP but no SHT_DYNAMIC section (its .dynamic retyped to
  // PROGBITS) has an interpreter, so it is a PIE by that definition. Its
  // PT_DYNAMIC goes too: a dynamic table the loader reads but the parser does
  // not is refused (ElfSearchPaths.MalformedEntriesAreRefused).
  Bytes b = TrueExe();
  ElfImage img = MustParse(b);
  int dynamic = SectionIndex(img, ".dynamic");
  ASSERT_GE(dynamic, 0);
  EditShdr(b, dynamic, [](Elf64_Shdr& s) { s.sh_type = SHT_PROGBITS; });
  int segment = SegmentIndex(b, PT_DYNAMIC);
  ASSERT_GE(segment, 0);
  EditPhdr(b, segment, [](Elf64_Phdr& p) { p.p_type = PT_NULL; });
  auto parsed = ParseElf(b);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->type, ET_DYN);
  EXPECT_FALSE(parsed->interpreter.empty());
  EXPECT_FALSE(parsed->is_dynamic);
  EXPECT_TRUE(parsed->is_pie) << "ET_DYN with interpreter " << parsed->interpreter << " is not reported as a PIE";
}

// ---------------------------------------------------------------------------
// ClassifySection.

void CheckClassification(const Bytes& file, const char* what) {
  SCOPED_TRACE(what);
  ElfImage img = MustParse(file);
  auto expect = [&](std::string_view name, bool encrypted, bool required = true) {
    int i = SectionIndex(img, name);
    if (i < 0) {
      if (required) ADD_FAILURE() << "no section " << name;
      return;
    }
    SectionRule rule = ClassifySection(img, i);
    EXPECT_EQ(rule.encrypted, encrypted) << name << ": " << rule.reason;
    if (encrypted) {
      EXPECT_TRUE(rule.reason.empty()) << name;
    } else {
      EXPECT_FALSE(rule.reason.empty()) << name;
    }
  };
  expect(".text", true);
  expect(".rodata", true);
  expect(".data", true);
  expect(".init", true);
  expect(".fini", true);
  expect(".eh_frame", true);
  expect(".data.rel.ro", true);
  expect(".got", true);
  expect(".init_array", true);
  expect(".strtab", true, /*required=*/false);  // linked from .symtab, which the loader never reads
  expect(".symtab", true, false);

  expect(".interp", false);
  expect(".dynamic", false);
  expect(".dynsym", false);
  expect(".dynstr", false);
  expect(".gnu.hash", false);
  expect(".gnu.version", false);
  expect(".gnu.version_r", false);
  expect(".rela.dyn", false);
  expect(".rela.plt", false);
  expect(".note.gnu.build-id", false);
  expect(".note.ABI-tag", false);
  expect(".note.gnu.property", false, false);
  expect(".shstrtab", false);
  expect(".bss", false);  // no bytes in the file
  // Section 0 has no bytes.
  EXPECT_FALSE(ClassifySection(img, 0).encrypted);
  // Every SHT_NOTE section is plaintext, whatever its name.
  for (size_t i = 0; i < img.sections.size(); ++i)
    if (img.sections[i].type == SHT_NOTE || img.sections[i].type == SHT_NOBITS) {
      EXPECT_FALSE(ClassifySection(img, i).encrypted) << img.sections[i].name;
    }
}

TEST(ElfClassify, SelfExecutable) { CheckClassification(SelfExe(), "/proc/self/exe"); }
TEST(ElfClassify, BinTrue) { CheckClassification(TrueExe(), "/bin/true"); }

// A hand-made image: section 0, .shstrtab, then whatever the test adds.
ElfImage SyntheticImage() {
  ElfImage img;
  img.type = ET_DYN;
  img.header_size = 64;
  img.phdr_offset = 64;
  img.phdr_size = 2 * sizeof(Elf64_Phdr);
  img.shdr_offset = 0x10000;
  img.shdr_size = 16 * sizeof(Elf64_Shdr);
  img.shstrndx = 1;
  img.segments.push_back({PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0});
  img.segments.push_back({PT_LOAD, PF_R | PF_X, 0, 0x9000, 0, 0x9000});
  img.sections.push_back({});
  ElfSection names;
  names.name = ".shstrtab";
  names.type = SHT_STRTAB;
  names.offset = 0xf000;
  names.size = 0x100;
  img.sections.push_back(names);
  return img;
}

size_t AddSection(ElfImage& img, std::string name, uint32_t type, uint64_t offset, uint64_t size,
                  uint64_t flags = SHF_ALLOC, uint32_t link = 0) {
  ElfSection s;
  s.name = std::move(name);
  s.type = type;
  s.flags = flags;
  s.offset = offset;
  s.size = size;
  s.link = link;
  img.sections.push_back(s);
  return img.sections.size() - 1;
}

TEST(ElfClassify, RulesOnSyntheticImage) {
  ElfImage img = SyntheticImage();
  size_t text = AddSection(img, ".text", SHT_PROGBITS, 0x1000, 0x100, SHF_ALLOC | SHF_EXECINSTR);
  size_t rela_alloc = AddSection(img, ".rela.dyn", SHT_RELA, 0x400, 0x30);
  size_t rela_debug = AddSection(img, ".rela.debug_info", SHT_RELA, 0x2000, 0x30, 0);
  size_t rel_alloc = AddSection(img, ".rel.dyn", SHT_REL, 0x440, 0x10);
  size_t relr_alloc = AddSection(img, ".relr.dyn", 19, 0x460, 0x10);
  size_t relr_plain = AddSection(img, ".relr.other", 19, 0x2100, 0x10, 0);
  size_t hash = AddSection(img, ".hash", SHT_HASH, 0x480, 0x20);
  size_t verdef = AddSection(img, ".gnu.version_d", SHT_GNU_verdef, 0x4a0, 0x20);
  size_t strtab = AddSection(img, ".strtab", SHT_STRTAB, 0x3000, 0x40, 0);
  size_t symtab = AddSection(img, ".symtab", SHT_SYMTAB, 0x3100, 0x48, 0, static_cast<uint32_t>(strtab));
  size_t verstr = AddSection(img, ".verstr", SHT_STRTAB, 0x500, 0x20);
  size_t verdef_linked = AddSection(img, ".gnu.version_d2", SHT_GNU_verdef, 0x520, 0x20, SHF_ALLOC,
                                    static_cast<uint32_t>(verstr));
  size_t empty = AddSection(img, ".empty", SHT_PROGBITS, 0x1200, 0);
  size_t interp_holder = AddSection(img, ".myinterp", SHT_PROGBITS, 0x300, 0x40);
  img.segments.push_back({PT_INTERP, PF_R, 0x310, 0x1c, 0x310, 0x1c});

  EXPECT_TRUE(ClassifySection(img, text).encrypted);
  EXPECT_FALSE(ClassifySection(img, rela_alloc).encrypted);
  EXPECT_TRUE(ClassifySection(img, rela_debug).encrypted);  // the loader never reads it
  EXPECT_FALSE(ClassifySection(img, rel_alloc).encrypted);
  EXPECT_FALSE(ClassifySection(img, relr_alloc).encrypted);
  EXPECT_TRUE(ClassifySection(img, relr_plain).encrypted);
  EXPECT_FALSE(ClassifySection(img, hash).encrypted);
  EXPECT_FALSE(ClassifySection(img, verdef).encrypted);
  EXPECT_TRUE(ClassifySection(img, strtab).encrypted);
  EXPECT_TRUE(ClassifySection(img, symtab).encrypted);
  EXPECT_FALSE(ClassifySection(img, verstr).encrypted);  // names the loader checks
  EXPECT_FALSE(ClassifySection(img, verdef_linked).encrypted);
  EXPECT_FALSE(ClassifySection(img, empty).encrypted);
  EXPECT_FALSE(ClassifySection(img, interp_holder).encrypted);
  EXPECT_FALSE(ClassifySection(img, img.shstrndx).encrypted);
}

// ---------------------------------------------------------------------------
// ProtectedRanges.

void CheckRanges(const Bytes& file, const char* what) {
  SCOPED_TRACE(what);
  ElfImage img = MustParse(file);
  auto ranges = ProtectedRanges(img, file.size());
  ASSERT_TRUE(ranges.has_value()) << ranges.error().message;
  ASSERT_FALSE(ranges->empty());

  // Sorted, disjoint, not even touching (touching ranges are merged), inside the file.
  for (size_t i = 0; i < ranges->size(); ++i) {
    const FileRange& r = (*ranges)[i];
    EXPECT_GT(r.size, 0u);
    EXPECT_LE(r.offset, file.size());
    EXPECT_LE(r.size, file.size() - r.offset);
    if (i > 0) {
      const FileRange& p = (*ranges)[i - 1];
      EXPECT_GT(r.offset, p.offset + p.size) << "range " << i;
    }
    // Never over the header tables.
    EXPECT_FALSE(RangesOverlap(r.offset, r.size, 0, img.header_size)) << i;
    EXPECT_FALSE(RangesOverlap(r.offset, r.size, img.phdr_offset, img.phdr_size)) << i;
    EXPECT_FALSE(RangesOverlap(r.offset, r.size, img.shdr_offset, img.shdr_size)) << i;
    // Never over a plaintext section or a segment the loader reads.
    for (size_t s = 0; s < img.sections.size(); ++s) {
      if (ClassifySection(img, s).encrypted) continue;
      EXPECT_FALSE(RangesOverlap(r.offset, r.size, img.sections[s].offset, img.sections[s].size))
          << "range " << i << " overlaps " << img.sections[s].name;
    }
    for (const ElfSegment& seg : img.segments)
      if (seg.type == PT_INTERP || seg.type == PT_DYNAMIC || seg.type == PT_NOTE) {
        EXPECT_FALSE(RangesOverlap(r.offset, r.size, seg.offset, seg.file_size)) << i;
      }
  }

  // Oracle: the union of the encrypted sections' bytes, merged when touching.
  std::vector<FileRange> want;
  for (size_t s = 0; s < img.sections.size(); ++s)
    if (ClassifySection(img, s).encrypted) want.push_back({img.sections[s].offset, img.sections[s].size});
  std::sort(want.begin(), want.end(), [](auto& a, auto& b) { return a.offset < b.offset; });
  std::vector<FileRange> merged;
  for (const FileRange& r : want) {
    if (!merged.empty() && r.offset <= merged.back().offset + merged.back().size)
      merged.back().size = std::max(merged.back().offset + merged.back().size, r.offset + r.size) - merged.back().offset;
    else
      merged.push_back(r);
  }
  EXPECT_EQ(*ranges, merged);

  // .text is inside exactly one range.
  int text = SectionIndex(img, ".text");
  ASSERT_GE(text, 0);
  int containing = 0;
  for (const FileRange& r : *ranges)
    if (r.offset <= img.sections[text].offset &&
        img.sections[text].offset + img.sections[text].size <= r.offset + r.size)
      ++containing;
  EXPECT_EQ(containing, 1);
}

TEST(ElfRanges, SelfExecutable) { CheckRanges(SelfExe(), "/proc/self/exe"); }
TEST(ElfRanges, BinTrue) { CheckRanges(TrueExe(), "/bin/true"); }

TEST(ElfRanges, MergesTouchingAndOverlappingAndSorts) {
  ElfImage img = SyntheticImage();
  AddSection(img, ".c", SHT_PROGBITS, 0x3000, 0x100);
  AddSection(img, ".a", SHT_PROGBITS, 0x1000, 0x100);
  AddSection(img, ".b", SHT_PROGBITS, 0x1100, 0x80);   // touches .a
  AddSection(img, ".b2", SHT_PROGBITS, 0x1150, 0x100); // overlaps .b
  AddSection(img, ".d", SHT_PROGBITS, 0x3101, 0x10);   // one byte of gap after .c
  AddSection(img, ".bss", SHT_NOBITS, 0x3200, 0);
  auto r = ProtectedRanges(img, 0x20000);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  std::vector<FileRange> want = {{0x1000, 0x250}, {0x3000, 0x100}, {0x3101, 0x10}};
  EXPECT_EQ(*r, want);
}

TEST(ElfRanges, RefusesOverlapsWithPlaintext) {
  const Bytes& file = TrueExe();
  ElfImage base = MustParse(file);
  int text = SectionIndex(base, ".text");
  int dynstr = SectionIndex(base, ".dynstr");
  int data = SectionIndex(base, ".data");
  int abi = SectionIndex(base, ".note.ABI-tag");
  ASSERT_GE(text, 0);
  ASSERT_GE(dynstr, 0);
  ASSERT_GE(data, 0);
  ASSERT_GE(abi, 0);

  auto expect_refused = [&](const ElfImage& img, const char* what) {
    auto r = ProtectedRanges(img, file.size());
    ASSERT_FALSE(r.has_value()) << what;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << what << ": " << r.error().message;
  };
  {
    ElfImage img = base;  // .text grows over .dynstr
    img.sections[text].offset = base.sections[dynstr].offset + 1;
    expect_refused(img, ".text over .dynstr");
  }
  {
    ElfImage img = base;  // .data over the ELF header
    img.sections[data].offset = 8;
    img.sections[data].size = 16;
    expect_refused(img, ".data over the ELF header");
  }
  {
    ElfImage img = base;  // .data over the program header table
    img.sections[data].offset = base.phdr_offset + base.phdr_size - 1;
    img.sections[data].size = 2;
    expect_refused(img, ".data over the program headers");
  }
  {
    ElfImage img = base;  // .data over the section header table
    img.sections[data].offset = base.shdr_offset;
    img.sections[data].size = 1;
    expect_refused(img, ".data over the section headers");
  }
  {
    ElfImage img = base;  // a note section retyped to PROGBITS is still under PT_NOTE
    img.sections[abi].type = SHT_PROGBITS;
    EXPECT_TRUE(ClassifySection(img, abi).encrypted);
    expect_refused(img, "note bytes under PT_NOTE");
  }
  {
    ElfImage img = base;  // .text over the PT_DYNAMIC segment (a section that is not SHT_DYNAMIC)
    int dyn = SectionIndex(img, ".dynamic");
    ASSERT_GE(dyn, 0);
    img.sections[dyn].type = SHT_PROGBITS;
    img.sections[dyn].flags = SHF_ALLOC | SHF_WRITE;
    expect_refused(img, "bytes under PT_DYNAMIC");
  }
}

TEST(ElfRanges, RefusesNothingToEncryptAndSectionsOutsideTheFile) {
  const Bytes& file = TrueExe();
  ElfImage base = MustParse(file);
  {
    ElfImage img = base;
    for (size_t i = 1; i < img.sections.size(); ++i)
      if (ClassifySection(img, i).encrypted) img.sections[i].size = 0;
    auto r = ProtectedRanges(img, file.size());
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << r.error().message;
  }
  {
    // The file the caller names is shorter than the parsed image says.
    auto r = ProtectedRanges(base, file.size() / 2);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kMalformed) << r.error().message;
  }
  {
    ElfImage img = base;
    int text = SectionIndex(img, ".text");
    img.sections[text].offset = ~uint64_t{0} - 4;  // offset + size wraps
    auto r = ProtectedRanges(img, file.size());
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kMalformed) << r.error().message;
  }
}

// ---------------------------------------------------------------------------
// CheckNoWritableCode.

TEST(ElfWritableCode, RealProgramsPass) {
  for (const Bytes* f : {&SelfExe(), &TrueExe()}) {
    ElfImage img = MustParse(*f);
    auto st = CheckNoWritableCode(img);
    EXPECT_TRUE(st.has_value()) << st.error().message;
  }
}

void ExpectRefused(const Bytes& b, const char* what) {
  auto img = ParseElf(b);
  ASSERT_TRUE(img.has_value()) << what << ": " << img.error().message;
  auto st = CheckNoWritableCode(*img);
  ASSERT_FALSE(st.has_value()) << what;
  EXPECT_EQ(st.error().code, ErrorCode::kRefused) << what << ": " << st.error().message;
}

TEST(ElfWritableCode, RefusesWritableExecutableLoad) {
  for (const Bytes* f : {&TrueExe(), &SelfExe()}) {
    Bytes b = *f;
    bool changed = false;
    for (size_t i = 0; i < Ehdr(b).e_phnum && !changed; ++i) {
      auto ph = LoadAt<Elf64_Phdr>(b, PhdrAt(b, i));
      if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) {
        EditPhdr(b, i, [](Elf64_Phdr& p) { p.p_flags = PF_R | PF_W | PF_X; });
        changed = true;
      }
    }
    ASSERT_TRUE(changed);
    ExpectRefused(b, "PT_LOAD RWX");
  }
  // The writable data segment made executable too.
  Bytes b = TrueExe();
  for (size_t i = 0; i < Ehdr(b).e_phnum; ++i) {
    auto ph = LoadAt<Elf64_Phdr>(b, PhdrAt(b, i));
    if (ph.p_type == PT_LOAD && (ph.p_flags & PF_W))
      EditPhdr(b, i, [](Elf64_Phdr& p) { p.p_flags |= PF_X; });
  }
  ExpectRefused(b, "PT_LOAD RW made RWX");
}

TEST(ElfWritableCode, WritableOrExecutableAloneIsFine) {
  // A non-loadable segment with W|X (PT_NOTE, say) maps nothing.
  Bytes b = TrueExe();
  int note = SegmentIndex(b, PT_NOTE);
  ASSERT_GE(note, 0);
  EditPhdr(b, note, [](Elf64_Phdr& p) { p.p_flags = PF_R | PF_W | PF_X; });
  ElfImage img = MustParse(b);
  EXPECT_TRUE(CheckNoWritableCode(img).has_value());
}

TEST(ElfWritableCode, RefusesExecutableStack) {
  for (const Bytes* f : {&TrueExe(), &SelfExe()}) {
    Bytes b = *f;
    int stack = SegmentIndex(b, PT_GNU_STACK);
    ASSERT_GE(stack, 0);
    EditPhdr(b, stack, [](Elf64_Phdr& p) { p.p_flags |= PF_X; });
    ExpectRefused(b, "PT_GNU_STACK with PF_X");
  }
}

TEST(ElfWritableCode, RefusesMissingStackHeader) {
  for (const Bytes* f : {&TrueExe(), &SelfExe()}) {
    Bytes b = *f;
    int stack = SegmentIndex(b, PT_GNU_STACK);
    ASSERT_GE(stack, 0);
    EditPhdr(b, stack, [](Elf64_Phdr& p) { p.p_type = PT_NULL; });
    ExpectRefused(b, "no PT_GNU_STACK");
  }
}

TEST(ElfWritableCode, RefusesTextRelocations) {
  for (const Bytes* f : {&TrueExe(), &SelfExe()}) {
    Bytes b = *f;
    ElfImage img = MustParse(b);
    uint64_t at = DynamicEntryAt(b, img, DT_DEBUG);
    ASSERT_NE(at, 0u) << "no DT_DEBUG entry to rewrite";
    auto d = LoadAt<Elf64_Dyn>(b, at);
    d.d_tag = DT_TEXTREL;  // 22
    StoreAt(b, at, d);
    auto parsed = ParseElf(b);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
    EXPECT_TRUE(parsed->text_relocations);
    ExpectRefused(b, "DT_TEXTREL");
  }
}

TEST(ElfWritableCode, RefusesTextRelocationFlag) {
  Bytes b = TrueExe();
  ElfImage img = MustParse(b);
  uint64_t at = DynamicEntryAt(b, img, DT_DEBUG);
  ASSERT_NE(at, 0u);
  Elf64_Dyn d{};
  d.d_tag = DT_FLAGS;
  d.d_un.d_val = DF_TEXTREL;
  StoreAt(b, at, d);
  auto parsed = ParseElf(b);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_TRUE(parsed->text_relocations);
  ExpectRefused(b, "DF_TEXTREL");
  // DT_FLAGS without DF_TEXTREL (DF_BIND_NOW) is fine.
  d.d_un.d_val = DF_BIND_NOW;
  StoreAt(b, at, d);
  ElfImage ok = MustParse(b);
  EXPECT_FALSE(ok.text_relocations);
  EXPECT_TRUE(CheckNoWritableCode(ok).has_value());
}

TEST(ElfWritableCode, SyntheticImages) {
  ElfImage img = SyntheticImage();
  EXPECT_TRUE(CheckNoWritableCode(img).has_value());
  img.text_relocations = true;
  EXPECT_EQ(CheckNoWritableCode(img).error().code, ErrorCode::kRefused);
  img = SyntheticImage();
  img.segments.clear();
  EXPECT_EQ(CheckNoWritableCode(img).error().code, ErrorCode::kRefused);
  img = SyntheticImage();
  img.segments.push_back({PT_LOAD, PF_W | PF_X, 0, 0, 0, 0});
  EXPECT_EQ(CheckNoWritableCode(img).error().code, ErrorCode::kRefused);
}

// ---------------------------------------------------------------------------
// Library search paths: what the loader of a decrypted program may read.

TEST(ElfSearchPaths, RealProgramPasses) {
  ElfImage img = MustParse(TrueExe());
  EXPECT_TRUE(img.search_paths.empty());
  EXPECT_TRUE(CheckLibrarySearchPaths(img).has_value());
  // Only the interpreter: /bin/true names its libraries, not their paths.
  std::vector<LoaderPath> paths = LoaderPaths(img);
  ASSERT_EQ(paths.size(), 1u);
  EXPECT_EQ(paths[0].path, img.interpreter);
}

// Turns /bin/true's first DT_NEEDED entry into `tag`: the entry then names
// "libc.so.6" (or whichever library comes first) as a search directory, a
// relative one, as the parser and the check see it in a real file.
Bytes WithNeededRetagged(int64_t tag) {
  Bytes b = TrueExe();
  ElfImage img = MustParse(b);
  uint64_t at = DynamicEntryAt(b, img, DT_NEEDED);
  EXPECT_NE(at, 0u);
  auto d = LoadAt<Elf64_Dyn>(b, at);
  d.d_tag = tag;
  StoreAt(b, at, d);
  return b;
}

TEST(ElfSearchPaths, ParsesRunpathAndRpathFromTheFile) {
  for (int64_t tag : {int64_t{DT_RUNPATH}, int64_t{DT_RPATH}}) {
    Bytes b = WithNeededRetagged(tag);
    ElfImage img = MustParse(b);
    ASSERT_EQ(img.search_paths.size(), 1u);
    EXPECT_EQ(img.search_paths[0].runpath, tag == DT_RUNPATH);
    EXPECT_FALSE(img.search_paths[0].value.empty());
    EXPECT_EQ(tag == DT_RUNPATH ? img.runpath : img.rpath, img.search_paths[0].value);
    auto st = CheckLibrarySearchPaths(img);
    ASSERT_FALSE(st.has_value());
    EXPECT_EQ(st.error().code, ErrorCode::kRefused);
    std::string want = std::string(tag == DT_RUNPATH ? "DT_RUNPATH" : "DT_RPATH") + " entry \"" +
                       img.search_paths[0].value + "\" is a relative directory";
    EXPECT_NE(st.error().message.find(want), std::string::npos) << st.error().message;
    EXPECT_NE(st.error().message.find("rebuild without -rpath"), std::string::npos) << st.error().message;
  }
}

TEST(ElfSearchPaths, MalformedEntriesAreRefused) {
  const Bytes& file = TrueExe();
  ElfImage img = MustParse(file);
  int dynamic = SectionIndex(img, ".dynamic");
  int dynstr = SectionIndex(img, ".dynstr");
  ASSERT_GE(dynamic, 0);
  ASSERT_GE(dynstr, 0);
  // A DT_RUNPATH whose string lies past .dynstr, or exactly at its end.
  for (uint64_t index : {img.sections[dynstr].size, img.sections[dynstr].size + 1, ~uint64_t{0}}) {
    Bytes b = WithNeededRetagged(DT_RUNPATH);
    uint64_t at = DynamicEntryAt(b, MustParse(b), DT_RUNPATH);
    auto d = LoadAt<Elf64_Dyn>(b, at);
    d.d_un.d_val = index;
    StoreAt(b, at, d);
    ExpectParseFails(b, ErrorCode::kMalformed, "runpath string index " + std::to_string(index), "outside .dynstr");
  }
  // PT_DYNAMIC, which the loader reads, must be the section the check reads.
  int seg = SegmentIndex(file, PT_DYNAMIC);
  ASSERT_GE(seg, 0);
  Bytes b = file;
  EditPhdr(b, seg, [](Elf64_Phdr& p) { p.p_offset += sizeof(Elf64_Dyn); p.p_filesz -= sizeof(Elf64_Dyn); });
  ExpectParseFails(b, ErrorCode::kMalformed, "PT_DYNAMIC moved", "PT_DYNAMIC");
  b = file;
  EditPhdr(b, seg, [](Elf64_Phdr& p) { p.p_filesz -= sizeof(Elf64_Dyn); });
  ExpectParseFails(b, ErrorCode::kMalformed, "PT_DYNAMIC shorter", "PT_DYNAMIC");
  b = file;
  EditShdr(b, dynamic, [](Elf64_Shdr& s) { s.sh_type = SHT_PROGBITS; });
  ExpectParseFails(b, ErrorCode::kMalformed, "PT_DYNAMIC without .dynamic", "PT_DYNAMIC");
  // A .dynamic cut inside an entry, at every byte of the last entry.
  for (uint64_t cut = 1; cut < sizeof(Elf64_Dyn); ++cut) {
    b = file;
    EditShdr(b, dynamic, [&](Elf64_Shdr& s) { s.sh_size -= cut; });
    EditPhdr(b, seg, [&](Elf64_Phdr& p) { p.p_filesz -= cut; });
    ExpectParseFails(b, ErrorCode::kMalformed, ".dynamic cut by " + std::to_string(cut), "partial entry");
  }
  // The file truncated inside .dynamic.
  const ElfSection& d = img.sections[dynamic];
  for (uint64_t keep : {d.offset, d.offset + 1, d.offset + d.size / 2, d.offset + d.size - 1}) {
    Bytes cut(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(keep));
    auto r = ParseElf(cut);
    ASSERT_FALSE(r.has_value()) << "cut at " << keep;
    EXPECT_TRUE(IsParseErrorCode(r.error().code)) << r.error().message;
  }
}

ElfImage WithSearchPath(bool runpath, std::string value) {
  ElfImage img = SyntheticImage();
  img.search_paths.push_back({runpath, std::move(value)});
  return img;
}

void ExpectSearchRefused(const ElfImage& img, std::string_view message_part) {
  auto st = CheckLibrarySearchPaths(img);
  ASSERT_FALSE(st.has_value()) << "accepted; wanted: " << message_part;
  EXPECT_EQ(st.error().code, ErrorCode::kRefused);
  EXPECT_NE(st.error().message.find(message_part), std::string::npos) << st.error().message;
}

TEST(ElfSearchPaths, Rules) {
  EXPECT_TRUE(CheckLibrarySearchPaths(WithSearchPath(true, "/opt/vendor/lib")).has_value());
  EXPECT_TRUE(CheckLibrarySearchPaths(WithSearchPath(false, "/usr/lib/x:/opt/y/lib")).has_value());
  EXPECT_TRUE(CheckLibrarySearchPaths(WithSearchPath(true, "/tmpfoo/lib")).has_value());
  ExpectSearchRefused(WithSearchPath(true, "vlib"), "DT_RUNPATH entry \"vlib\" is a relative directory");
  ExpectSearchRefused(WithSearchPath(false, "vlib"), "DT_RPATH entry \"vlib\" is a relative directory");
  ExpectSearchRefused(WithSearchPath(true, "/opt/a:vlib"), "entry \"vlib\" is a relative");
  ExpectSearchRefused(WithSearchPath(true, "/opt/a:"), "entry \"\" is empty");
  ExpectSearchRefused(WithSearchPath(true, ":/opt/a"), "entry \"\" is empty");
  ExpectSearchRefused(WithSearchPath(true, "/opt/a::/opt/b"), "entry \"\" is empty");
  ExpectSearchRefused(WithSearchPath(true, ""), "is empty");
  ExpectSearchRefused(WithSearchPath(true, "$ORIGIN/lib"), "entry \"$ORIGIN/lib\" uses a loader variable");
  ExpectSearchRefused(WithSearchPath(true, "/usr/$LIB"), "uses a loader variable");
  ExpectSearchRefused(WithSearchPath(true, "/opt/${PLATFORM}"), "uses a loader variable");
  ExpectSearchRefused(WithSearchPath(true, "/tmp/xyz"), "entry \"/tmp/xyz\" lies under /tmp");
  ExpectSearchRefused(WithSearchPath(true, "/tmp"), "lies under /tmp");
  ExpectSearchRefused(WithSearchPath(true, "/var/tmp/l"), "lies under /var/tmp");
  ExpectSearchRefused(WithSearchPath(true, "/dev/shm/l"), "lies under /dev/shm");
  ExpectSearchRefused(WithSearchPath(true, "/home/alice/lib"), "lies under /home");
  ExpectSearchRefused(WithSearchPath(true, "/usr/lib/../../tmp/x"), "'..'");
  ExpectSearchRefused(WithSearchPath(true, "/usr/./lib"), "'.'");
  // Every entry is checked, not only the last the loader would use.
  ElfImage two = WithSearchPath(true, "vlib");
  two.search_paths.push_back({true, "/opt/ok"});
  ExpectSearchRefused(two, "\"vlib\"");

  ElfImage img = SyntheticImage();
  img.needed = {"libc.so.6", "vlib/libm.so.6"};
  ExpectSearchRefused(img, "DT_NEEDED entry \"vlib/libm.so.6\" is a relative directory");
  img.needed = {"/tmp/libm.so.6"};
  ExpectSearchRefused(img, "DT_NEEDED entry \"/tmp/libm.so.6\" lies under /tmp");
  img.needed = {"$ORIGIN/libm.so.6"};
  ExpectSearchRefused(img, "uses a loader variable");
  img.needed = {"/usr/lib/libm.so.6", "libc.so.6"};
  EXPECT_TRUE(CheckLibrarySearchPaths(img).has_value());
  ASSERT_EQ(LoaderPaths(img).size(), 1u + (img.interpreter.empty() ? 0 : 1));
  EXPECT_EQ(LoaderPaths(img)[0].path, "/usr/lib/libm.so.6");

  img = SyntheticImage();
  img.interpreter = "/tmp/ld.so";
  ExpectSearchRefused(img, "interpreter \"/tmp/ld.so\" lies under /tmp");
  img.interpreter = "ld.so";
  ExpectSearchRefused(img, "interpreter \"ld.so\" is a relative");

  img = WithSearchPath(true, "/opt/a:/opt/b");
  img.interpreter = "/lib64/ld-linux-x86-64.so.2";
  std::vector<LoaderPath> paths = LoaderPaths(img);
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_EQ(paths[0].path, "/opt/a");
  EXPECT_EQ(paths[0].what, "DT_RUNPATH entry \"/opt/a\"");
  EXPECT_EQ(paths[1].path, "/opt/b");
  EXPECT_EQ(paths[2].path, "/lib64/ld-linux-x86-64.so.2");
}

// ---------------------------------------------------------------------------
// Malformed headers. Each mutation is of a copy of /bin/true.

TEST(ElfMalformed, Magic) {
  for (int i = 0; i < 4; ++i) {
    Bytes b = TrueExe();
    b[i] ^= 0x20;
    EXPECT_FALSE(LooksLikeElf(b));
    ExpectParseFails(b, ErrorCode::kMalformed, "magic byte " + std::to_string(i));
  }
  ExpectParseFails(ToBytes("#!/bin/sh\necho hello, this is long enough to hold an ELF header.......\n"),
                   ErrorCode::kMalformed, "a script");
}

TEST(ElfMalformed, ClassDataVersion) {
  Bytes b = TrueExe();
  b[EI_CLASS] = ELFCLASS32;
  ExpectParseFails(b, ErrorCode::kInvalidArgument, "ELFCLASS32");
  b = TrueExe();
  b[EI_CLASS] = ELFCLASSNONE;
  ExpectParseFails(b, ErrorCode::kInvalidArgument, "ELFCLASSNONE");
  b = TrueExe();
  b[EI_DATA] = ELFDATA2MSB;
  ExpectParseFails(b, ErrorCode::kInvalidArgument, "big-endian");
  b = TrueExe();
  b[EI_DATA] = ELFDATANONE;
  ExpectParseFails(b, ErrorCode::kInvalidArgument, "ELFDATANONE");
  b = TrueExe();
  b[EI_VERSION] = 0;
  ExpectParseFails(b, ErrorCode::kMalformed, "EI_VERSION 0");
  b = TrueExe();
  EditEhdr(b, [](Elf64_Ehdr& h) { h.e_version = 2; });
  ExpectParseFails(b, ErrorCode::kMalformed, "e_version 2");
}

TEST(ElfMalformed, FileTypes) {
  for (uint16_t type : {uint16_t{ET_REL}, uint16_t{ET_CORE}, uint16_t{ET_NONE}, uint16_t{0xfe00}}) {
    Bytes b = TrueExe();
    EditEhdr(b, [&](Elf64_Ehdr& h) { h.e_type = type; });
    ExpectParseFails(b, ErrorCode::kInvalidArgument, "e_type " + std::to_string(type));
  }
  // ET_EXEC is accepted by the parser.
  Bytes b = TrueExe();
  EditEhdr(b, [](Elf64_Ehdr& h) { h.e_type = ET_EXEC; });
  auto img = ParseElf(b);
  ASSERT_TRUE(img.has_value()) << img.error().message;
  EXPECT_EQ(img->type, ET_EXEC);
  EXPECT_FALSE(img->is_pie);
}

TEST(ElfMalformed, HeaderSizes) {
  Bytes b = TrueExe();
  EditEhdr(b, [](Elf64_Ehdr& h) { h.e_ehsize = 52; });
  ExpectParseFails(b, ErrorCode::kMalformed, "e_ehsize 52");
  for (uint16_t size : {uint16_t{0}, uint16_t{32}, uint16_t{55}, uint16_t{57}, uint16_t{64}}) {
    b = TrueExe();
    EditEhdr(b, [&](Elf64_Ehdr& h) { h.e_phentsize = size; });
    ExpectParseFails(b, ErrorCode::kMalformed, "e_phentsize " + std::to_string(size));
  }
  for (uint16_t size : {uint16_t{0}, uint16_t{40}, uint16_t{56}, uint16_t{63}, uint16_t{65}}) {
    b = TrueExe();
    EditEhdr(b, [&](Elf64_Ehdr& h) { h.e_shentsize = size; });
    ExpectParseFails(b, ErrorCode::kMalformed, "e_shentsize " + std::to_string(size));
  }
}

TEST(ElfMalformed, ProgramHeaderTable) {
  Bytes b = TrueExe();
  EditEhdr(b, [](Elf64_Ehdr& h) { h.e_phnum = 0; });
  ExpectParseFails(b, ErrorCode::kMalformed, "no program headers");
  for (uint16_t n : {uint16_t(kMaxElfSegments + 1), uint16_t{0xffff}}) {
    b = TrueExe();
    EditEhdr(b, [&](Elf64_Ehdr& h) { h.e_phnum = n; });
    ExpectParseFails(b, ErrorCode::kTooLarge, "e_phnum " + std::to_string(n));
  }
  // At the cap the count itself is allowed (the entries are then whatever
  // bytes follow, and may or may not make sense), so it is never kTooLarge.
  b = TrueExe();
  EditEhdr(b, [](Elf64_Ehdr& h) { h.e_phnum = kMaxElfSegments; });
  ASSERT_LT(64 + kMaxElfSegments * sizeof(Elf64_Phdr), TrueExe().size());
  if (auto r = ParseElf(b); !r) {
    EXPECT_NE(r.error().code, ErrorCode::kTooLarge) << r.error().message;
    EXPECT_TRUE(IsParseErrorCode(r.error().code));
  }
  const uint64_t size = TrueExe().size();
  for (uint64_t off : {size, size - 1, size - 56 * 13 + 1, ~uint64_t{0}, ~uint64_t{0} - 100,
                       uint64_t{1} << 63}) {
    b = TrueExe();
    EditEhdr(b, [&](Elf64_Ehdr& h) { h.e_phoff = off; });
    ExpectParseFails(b, ErrorCode::kMalformed, "e_phoff " + std::to_string(off));
  }
}

TEST(ElfMalformed, ProgramHeaders) {
  const Bytes& file = TrueExe();
  int load = -1;
  for (size_t i = 0; i < Ehdr(file).e_phnum; ++i)
    if (LoadAt<Elf64_Phdr>(file, PhdrAt(file, i)).p_type == PT_LOAD) {
      load = static_cast<int>(i);
      break;
    }
  ASSERT_GE(load, 0);
  Bytes b = file;
  EditPhdr(b, load, [&](Elf64_Phdr& p) { p.p_offset = file.size(); p.p_filesz = 1; });
  ExpectParseFails(b, ErrorCode::kMalformed, "segment past the end");
  b = file;
  EditPhdr(b, load, [](Elf64_Phdr& p) { p.p_offset = ~uint64_t{0} - 0x10; p.p_filesz = 0x100; });
  ExpectParseFails(b, ErrorCode::kMalformed, "segment offset+size wraps");
  b = file;
  EditPhdr(b, load, [](Elf64_Phdr& p) { p.p_offset = 0x10; p.p_filesz = ~uint64_t{0}; });
  ExpectParseFails(b, ErrorCode::kMalformed, "segment size huge");
  b = file;
  EditPhdr(b, load, [](Elf64_Phdr& p) { p.p_memsz = p.p_filesz - 1; });
  ExpectParseFails(b, ErrorCode::kMalformed, "PT_LOAD filesz > memsz");
}

TEST(ElfMalformed, Interpreter) {
  const Bytes& file = TrueExe();
  int interp = SegmentIndex(file, PT_INTERP);
  ASSERT_GE(interp, 0);
  Bytes b = file;
  EditPhdr(b, interp, [](Elf64_Phdr& p) { p.p_filesz -= 1; });  // drops the NUL
  ExpectParseFails(b, ErrorCode::kMalformed, "interpreter not terminated");
  b = file;
  EditPhdr(b, interp, [](Elf64_Phdr& p) { p.p_filesz = 0; });
  ExpectParseFails(b, ErrorCode::kMalformed, "interpreter empty segment");
  b = file;
  ASSERT_EQ(b[EI_PAD], 0);
  EditPhdr(b, interp, [](Elf64_Phdr& p) { p.p_offset = EI_PAD; p.p_filesz = 1; });
  ExpectParseFails(b, ErrorCode::kMalformed, "interpreter empty string");
  b = file;
  EditPhdr(b, interp, [](Elf64_Phdr& p) { p.p_offset = 0; p.p_filesz = 8192; });
  ExpectParseFails(b, ErrorCode::kMalformed, "interpreter too long");
  b = file;
  EditPhdr(b, interp, [&](Elf64_Phdr& p) { p.p_offset = file.size() - 1; p.p_filesz = 2; });
  ExpectParseFails(b, ErrorCode::kMalformed, "interpreter past the end");
}

TEST(ElfMalformed, SectionHeaderTable) {
  const uint64_t size = TrueExe().size();
  Bytes b = TrueExe();
  EditEhdr(b, [](Elf64_Ehdr& h) { h.e_shoff = 0; });
  ExpectParseFails(b, ErrorCode::kInvalidArgument, "no section headers (e_shoff 0)");
  b = TrueExe();
  EditEhdr(b, [](Elf64_Ehdr& h) { h.e_shnum = 0; });
  ExpectParseFails(b, ErrorCode::kInvalidArgument, "no section headers (e_shnum 0)");
  for (uint16_t n : {uint16_t(kMaxElfSections + 1), uint16_t{0xffff}}) {
    b = TrueExe();
    EditEhdr(b, [&](Elf64_Ehdr& h) { h.e_shnum = n; });
    ExpectParseFails(b, ErrorCode::kTooLarge, "e_shnum " + std::to_string(n));
  }
  const uint16_t shnum = Ehdr(TrueExe()).e_shnum;
  for (uint16_t idx : {uint16_t{SHN_UNDEF}, shnum, uint16_t(shnum + 1), uint16_t{SHN_XINDEX}}) {
    b = TrueExe();
    EditEhdr(b, [&](Elf64_Ehdr& h) { h.e_shstrndx = idx; });
    ExpectParseFails(b, ErrorCode::kMalformed, "e_shstrndx " + std::to_string(idx), "out of range");
  }
  for (uint64_t off : {size, size - 1, size - 64 * shnum + 1, size + 4096, ~uint64_t{0},
                       ~uint64_t{0} - 63, uint64_t{1} << 63}) {
    b = TrueExe();
    EditEhdr(b, [&](Elf64_Ehdr& h) { h.e_shoff = off; });
    ExpectParseFails(b, ErrorCode::kMalformed, "e_shoff " + std::to_string(off), "section header table");
  }
  // e_shnum one more than there is: the table runs past the end.
  b = TrueExe();
  EditEhdr(b, [](Elf64_Ehdr& h) { h.e_shnum += 1; });
  ExpectParseFails(b, ErrorCode::kMalformed, "e_shnum + 1");
  // The name table index points at a section that is not a string table.
  ElfImage img = MustParse(TrueExe());
  b = TrueExe();
  EditEhdr(b, [&](Elf64_Ehdr& h) { h.e_shstrndx = static_cast<uint16_t>(SectionIndex(img, ".text")); });
  ExpectParseFails(b, ErrorCode::kMalformed, "e_shstrndx -> .text");
  b = TrueExe();
  EditShdr(b, img.shstrndx, [](Elf64_Shdr& s) { s.sh_type = SHT_NOBITS; });
  ExpectParseFails(b, ErrorCode::kMalformed, ".shstrtab as NOBITS");
}

TEST(ElfMalformed, SectionsOutsideTheFile) {
  const Bytes& file = TrueExe();
  ElfImage img = MustParse(file);
  int text = SectionIndex(img, ".text");
  ASSERT_GE(text, 0);
  struct Case {
    uint64_t offset, size;
    const char* what;
  };
  for (Case c : {Case{~uint64_t{0} - 0xff, 0x200, "offset + size wraps past 2^64"},
                 Case{0x100, ~uint64_t{0}, "size 2^64 - 1"},
                 Case{0x100, ~uint64_t{0} - 0xff, "size wraps to the offset"},
                 Case{file.size(), 1, "starts at the end"},
                 Case{file.size() - 4, 5, "one byte past the end"},
                 Case{uint64_t{1} << 63, uint64_t{1} << 63, "both halves of 2^64"}}) {
    Bytes b = file;
    EditShdr(b, text, [&](Elf64_Shdr& s) { s.sh_offset = c.offset; s.sh_size = c.size; });
    ExpectParseFails(b, ErrorCode::kMalformed, c.what);
  }
  // A section ending exactly at the end of the file is fine.
  Bytes b = file;
  EditShdr(b, text, [&](Elf64_Shdr& s) { s.sh_offset = file.size() - 16; s.sh_size = 16; });
  EXPECT_TRUE(ParseElf(b).has_value());
  // NOBITS sizes are not file sizes: a huge .bss is fine.
  int bss = SectionIndex(img, ".bss");
  ASSERT_GE(bss, 0);
  b = file;
  EditShdr(b, bss, [](Elf64_Shdr& s) { s.sh_offset = ~uint64_t{0}; s.sh_size = ~uint64_t{0}; });
  auto parsed = ParseElf(b);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->sections[bss].size, 0u);
}

TEST(ElfMalformed, StringIndexPastTheTable) {
  const Bytes& file = TrueExe();
  ElfImage img = MustParse(file);
  const ElfSection& names = img.sections[img.shstrndx];
  int text = SectionIndex(img, ".text");
  for (uint32_t index : {static_cast<uint32_t>(names.size), static_cast<uint32_t>(names.size + 1),
                         uint32_t{0xffffffff}}) {
    Bytes b = file;
    EditShdr(b, text, [&](Elf64_Shdr& s) { s.sh_name = index; });
    ExpectParseFails(b, ErrorCode::kMalformed, "sh_name " + std::to_string(index), "outside");
  }
  // The last byte of the table is its final NUL: an empty name, which is fine.
  Bytes b = file;
  EditShdr(b, text, [&](Elf64_Shdr& s) { s.sh_name = static_cast<uint32_t>(names.size - 1); });
  auto parsed = ParseElf(b);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->sections[text].name, "");

  // DT_NEEDED past .dynstr.
  const ElfSection& dynstr = img.sections[SectionIndex(img, ".dynstr")];
  uint64_t needed = DynamicEntryAt(file, img, DT_NEEDED);
  ASSERT_NE(needed, 0u);
  for (uint64_t index : {dynstr.size, dynstr.size + 1000, ~uint64_t{0}}) {
    b = file;
    auto d = LoadAt<Elf64_Dyn>(b, needed);
    d.d_un.d_val = index;
    StoreAt(b, needed, d);
    ExpectParseFails(b, ErrorCode::kMalformed, "DT_NEEDED " + std::to_string(index), "outside");
  }
  // An import's name past .dynstr.
  const ElfSection& dynsym = img.sections[SectionIndex(img, ".dynsym")];
  bool done = false;
  for (uint64_t i = 1; i < dynsym.size / sizeof(Elf64_Sym) && !done; ++i) {
    uint64_t at = dynsym.offset + i * sizeof(Elf64_Sym);
    auto sym = LoadAt<Elf64_Sym>(file, at);
    if (sym.st_shndx != SHN_UNDEF) continue;
    b = file;
    sym.st_name = static_cast<uint32_t>(dynstr.size);
    StoreAt(b, at, sym);
    ExpectParseFails(b, ErrorCode::kMalformed, "import name past .dynstr", "outside");
    done = true;
  }
  EXPECT_TRUE(done);
  // A version name past .dynstr (the first Vernaux of .gnu.version_r).
  const ElfSection& vr = img.sections[SectionIndex(img, ".gnu.version_r")];
  auto vn = LoadAt<Elf64_Verneed>(file, vr.offset);
  ASSERT_GT(vn.vn_cnt, 0);
  b = file;
  auto va = LoadAt<Elf64_Vernaux>(b, vr.offset + vn.vn_aux);
  va.vna_name = static_cast<uint32_t>(dynstr.size + 7);
  StoreAt(b, vr.offset + vn.vn_aux, va);
  ExpectParseFails(b, ErrorCode::kMalformed, "version name past .dynstr", "outside");
}

TEST(ElfMalformed, StringTableWithoutTerminator) {
  const Bytes& file = TrueExe();
  ElfImage img = MustParse(file);
  // Cut .shstrtab one byte into the name that starts last.
  uint32_t last = 0;
  for (size_t i = 1; i < img.sections.size(); ++i)
    last = std::max(last, LoadAt<Elf64_Shdr>(file, ShdrAt(file, i)).sh_name);
  ASSERT_GT(last, 0u);
  Bytes b = file;
  EditShdr(b, img.shstrndx, [&](Elf64_Shdr& s) { s.sh_size = last + 1; });
  ExpectParseFails(b, ErrorCode::kMalformed, ".shstrtab without a final NUL", "not terminated");

  // The same for .dynstr, cut inside the first DT_NEEDED name.
  uint64_t needed = DynamicEntryAt(file, img, DT_NEEDED);
  ASSERT_NE(needed, 0u);
  uint64_t name = LoadAt<Elf64_Dyn>(file, needed).d_un.d_val;
  b = file;
  EditShdr(b, SectionIndex(img, ".dynstr"), [&](Elf64_Shdr& s) { s.sh_size = name + 3; });
  ExpectParseFails(b, ErrorCode::kMalformed, ".dynstr without a final NUL", "not terminated");

  // A table whose every byte is non-zero: overwrite .shstrtab's bytes.
  b = file;
  const ElfSection& names = img.sections[img.shstrndx];
  std::fill(b.begin() + names.offset, b.begin() + names.offset + names.size, 'x');
  ExpectParseFails(b, ErrorCode::kMalformed, ".shstrtab all 'x'", "not terminated");
}

TEST(ElfMalformed, LinkedTables) {
  const Bytes& file = TrueExe();
  ElfImage img = MustParse(file);
  int dynamic = SectionIndex(img, ".dynamic");
  int dynsym = SectionIndex(img, ".dynsym");
  int verneed = SectionIndex(img, ".gnu.version_r");
  int text = SectionIndex(img, ".text");
  ASSERT_GE(dynamic, 0);
  ASSERT_GE(dynsym, 0);
  ASSERT_GE(verneed, 0);
  const uint32_t shnum = Ehdr(file).e_shnum;
  for (int s : {dynamic, dynsym, verneed}) {
    for (uint32_t link : {static_cast<uint32_t>(dynsym == s ? dynamic : dynsym), static_cast<uint32_t>(text),
                          uint32_t{0}, shnum, shnum + 100, uint32_t{0xffffffff}}) {
      Bytes b = file;
      EditShdr(b, s, [&](Elf64_Shdr& h) { h.sh_link = link; });
      ExpectParseFails(b, ErrorCode::kMalformed, img.sections[s].name + " sh_link " + std::to_string(link));
    }
  }
  // Specifically: .dynamic linked to .dynsym names the wrong type.
  Bytes b = file;
  EditShdr(b, dynamic, [&](Elf64_Shdr& h) { h.sh_link = static_cast<uint32_t>(dynsym); });
  ExpectParseFails(b, ErrorCode::kMalformed, ".dynamic -> .dynsym", "wrong type");
}

TEST(ElfMalformed, DynamicAndSymbolTables) {
  const Bytes& file = TrueExe();
  ElfImage img = MustParse(file);
  int dynamic = SectionIndex(img, ".dynamic");
  int dynsym = SectionIndex(img, ".dynsym");
  int versym = SectionIndex(img, ".gnu.version");
  int got = SectionIndex(img, ".got");
  ASSERT_GE(got, 0);
  Bytes b = file;
  EditShdr(b, dynamic, [](Elf64_Shdr& s) { s.sh_size -= 8; });
  ExpectParseFails(b, ErrorCode::kMalformed, ".dynamic partial entry");
  b = file;
  EditShdr(b, got, [](Elf64_Shdr& s) { s.sh_type = SHT_DYNAMIC; });
  ExpectParseFails(b, ErrorCode::kMalformed, "two dynamic sections");
  b = file;
  EditShdr(b, dynsym, [](Elf64_Shdr& s) { s.sh_size -= 1; });
  ExpectParseFails(b, ErrorCode::kMalformed, ".dynsym partial entry");
  b = file;
  EditShdr(b, dynsym, [](Elf64_Shdr& s) { s.sh_size -= sizeof(Elf64_Sym); });
  ExpectParseFails(b, ErrorCode::kMalformed, ".gnu.version longer than .dynsym");
  b = file;
  EditShdr(b, versym, [](Elf64_Shdr& s) { s.sh_size -= 2; });
  ExpectParseFails(b, ErrorCode::kMalformed, ".gnu.version shorter than .dynsym");
}

TEST(ElfMalformed, VersionNeeds) {
  const Bytes& file = TrueExe();
  ElfImage img = MustParse(file);
  int vr_index = SectionIndex(img, ".gnu.version_r");
  const ElfSection& vr = img.sections[vr_index];
  auto vn = LoadAt<Elf64_Verneed>(file, vr.offset);
  Bytes b = file;
  EditShdr(b, vr_index, [](Elf64_Shdr& s) { s.sh_size = 8; });
  ExpectParseFails(b, ErrorCode::kMalformed, ".gnu.version_r shorter than an entry");
  b = file;
  EditShdr(b, vr_index, [](Elf64_Shdr& s) { s.sh_size = 0; });
  ExpectParseFails(b, ErrorCode::kMalformed, ".gnu.version_r empty");
  for (uint32_t aux : {static_cast<uint32_t>(vr.size), static_cast<uint32_t>(vr.size - 1), uint32_t{0xffffffff}}) {
    b = file;
    auto v = vn;
    v.vn_aux = aux;
    StoreAt(b, vr.offset, v);
    ExpectParseFails(b, ErrorCode::kMalformed, "vn_aux " + std::to_string(aux));
  }
  for (uint32_t next : {static_cast<uint32_t>(vr.size), uint32_t{0xfffffff0}}) {
    b = file;
    auto v = vn;
    v.vn_next = next;
    StoreAt(b, vr.offset, v);
    ExpectParseFails(b, ErrorCode::kMalformed, "vn_next " + std::to_string(next));
  }
  // vn_cnt larger than the auxiliary chain: the last vna_next is 0, so it stops.
  b = file;
  auto v = vn;
  v.vn_cnt = 0xffff;
  StoreAt(b, vr.offset, v);
  EXPECT_TRUE(ParseElf(b).has_value());
  // A vna_next running past the section.
  b = file;
  auto va = LoadAt<Elf64_Vernaux>(b, vr.offset + vn.vn_aux);
  va.vna_next = 0x7ffffff0;
  StoreAt(b, vr.offset + vn.vn_aux, va);
  v = vn;
  v.vn_cnt = 2;
  StoreAt(b, vr.offset, v);
  ExpectParseFails(b, ErrorCode::kMalformed, "vna_next past the section");
  // A vn_next of 1 makes the next entry an unaligned read of the same bytes:
  // whatever comes of it, the walk stays inside the section and ends.
  b = file;
  v = vn;
  v.vn_next = 1;
  StoreAt(b, vr.offset, v);
  if (auto r = ParseElf(b); !r) {
    EXPECT_EQ(r.error().code, ErrorCode::kMalformed) << r.error().message;
  }
}

// ---------------------------------------------------------------------------
// Truncation.

void CheckTruncations(const Bytes& file, const std::vector<uint64_t>& cuts, bool exact_copies) {
  ElfImage img = MustParse(file);
  const uint64_t tables_end =
      std::max({img.header_size, img.phdr_offset + img.phdr_size, img.shdr_offset + img.shdr_size});
  size_t failed = 0;
  for (uint64_t cut : cuts) {
    if (cut >= file.size()) continue;
    Result<ElfImage> r;
    if (exact_copies) {
      // An allocation of exactly `cut` bytes, so that AddressSanitizer sees any read past it.
      Bytes copy(file.begin(), file.begin() + static_cast<ptrdiff_t>(cut));
      r = ParseElf(copy);
    } else {
      r = ParseElf(ByteView(file).first(cut));
    }
    if (r) {
      // A valid result is allowed only when every header table is still whole.
      EXPECT_GE(cut, tables_end) << "a file cut at " << cut << " inside its header tables parsed";
      continue;
    }
    ++failed;
    EXPECT_TRUE(IsParseErrorCode(r.error().code)) << cut << ": " << r.error().message;
    if (cut < tables_end) {
      // Everything that can make a table partial is a malformed file.
      EXPECT_EQ(r.error().code, ErrorCode::kMalformed) << cut << ": " << r.error().message;
    }
    if (::testing::Test::HasFailure()) return;  // one report, not thousands
  }
  EXPECT_GT(failed, 0u);
}

std::vector<uint64_t> CutPoints(const Bytes& file, uint64_t every_byte_up_to, uint64_t step) {
  ElfImage img = MustParse(file);
  std::set<uint64_t> cuts;
  for (uint64_t c = 0; c <= every_byte_up_to && c < file.size(); ++c) cuts.insert(c);
  for (uint64_t c = 0; c < file.size(); c += step) cuts.insert(c);
  auto around = [&](uint64_t at) {
    for (int64_t d = -2; d <= 2; ++d)
      if (static_cast<int64_t>(at) + d >= 0) cuts.insert(at + d);
  };
  around(img.header_size);
  around(img.phdr_offset);
  around(img.phdr_offset + img.phdr_size);
  around(img.shdr_offset);
  around(img.shdr_offset + img.shdr_size);
  for (uint64_t i = 0; i * sizeof(Elf64_Shdr) < img.shdr_size; ++i) around(img.shdr_offset + i * sizeof(Elf64_Shdr));
  for (const ElfSection& s : img.sections)
    if (s.size) {
      around(s.offset);
      around(s.offset + s.size);
    }
  for (const ElfSegment& s : img.segments) {
    around(s.offset);
    around(s.offset + s.file_size);
  }
  around(file.size());
  return {cuts.begin(), cuts.end()};
}

TEST(ElfTruncation, HeaderRegionEveryByte) {
  for (const Bytes* f : {&TrueExe(), &SelfExe()}) {
    ElfImage img = MustParse(*f);
    uint64_t end = std::max(img.header_size, img.phdr_offset + img.phdr_size) + 64;
    std::vector<uint64_t> cuts;
    for (uint64_t c = 0; c <= end; ++c) cuts.push_back(c);
    CheckTruncations(*f, cuts, /*exact_copies=*/true);
    // Shorter than the ELF header: kMalformed, whatever the bytes.
    for (uint64_t c = 0; c < sizeof(Elf64_Ehdr); ++c) {
      Bytes copy(f->begin(), f->begin() + static_cast<ptrdiff_t>(c));
      auto r = ParseElf(copy);
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error().code, ErrorCode::kMalformed) << c;
    }
  }
}

TEST(ElfTruncation, BinTrueEveryByteExactAllocation) {
  const Bytes& file = TrueExe();
  std::vector<uint64_t> cuts(file.size());
  for (uint64_t c = 0; c < file.size(); ++c) cuts[c] = c;
  CheckTruncations(file, cuts, /*exact_copies=*/true);
}

TEST(ElfTruncation, SelfExecutableEvery97thByteAndBoundaries) {
  const Bytes& file = SelfExe();
  CheckTruncations(file, CutPoints(file, 4096, 97), /*exact_copies=*/false);
}

// Truncation that keeps the header tables: the section header table moved to
// the front of a file cut short, so every section beyond the cut lies outside.
TEST(ElfTruncation, SectionsBeyondTheCutWithTablesIntact) {
  const Bytes& file = TrueExe();
  ElfImage img = MustParse(file);
  std::mt19937 rng(97);
  for (int round = 0; round < 300; ++round) {
    uint64_t cut = 0x400 + rng() % (file.size() - 0x400);
    Bytes b(file.begin(), file.begin() + static_cast<ptrdiff_t>(cut));
    // Append the section header table after the cut and point e_shoff at it.
    uint64_t new_shoff = b.size();
    b.insert(b.end(), file.begin() + img.shdr_offset, file.begin() + img.shdr_offset + img.shdr_size);
    EditEhdr(b, [&](Elf64_Ehdr& h) { h.e_shoff = new_shoff; });
    auto r = ParseElf(b);
    if (!r) {
      EXPECT_TRUE(IsParseErrorCode(r.error().code)) << cut << ": " << r.error().message;
      continue;
    }
    // If it parsed, every section with bytes lies inside the shorter file.
    for (const ElfSection& s : r->sections)
      if (s.size) {
        EXPECT_LE(s.offset + s.size, b.size()) << cut << " " << s.name;
      }
    auto ranges = ProtectedRanges(*r, b.size());
    if (!ranges) {
      EXPECT_TRUE(IsParseErrorCode(ranges.error().code)) << ranges.error().message;
    }
  }
}

// ---------------------------------------------------------------------------
// Random damage.

// Everything a caller does with a parsed image; nothing may crash or read out
// of bounds, and every failure must carry one of the documented codes.
bool Exercise(ByteView b) {
  auto r = ParseElf(b);
  if (!r) {
    EXPECT_TRUE(IsParseErrorCode(r.error().code)) << r.error().message;
    EXPECT_FALSE(r.error().message.empty());
    return false;
  }
  for (const ElfSection& s : r->sections)
    if (s.size) {
      EXPECT_LE(s.offset, b.size());
      EXPECT_LE(s.size, b.size() - s.offset);
    }
  for (const ElfSegment& s : r->segments) {
    EXPECT_LE(s.offset, b.size());
    EXPECT_LE(s.file_size, b.size() - s.offset);
  }
  for (size_t i = 0; i < r->sections.size(); ++i) (void)ClassifySection(*r, i);
  auto searched = CheckLibrarySearchPaths(*r);
  if (!searched) {
    EXPECT_EQ(searched.error().code, ErrorCode::kRefused);
  }
  (void)LoaderPaths(*r);
  auto ranges = ProtectedRanges(*r, b.size());
  if (ranges) {
    for (size_t i = 0; i < ranges->size(); ++i) {
      const FileRange& x = (*ranges)[i];
      EXPECT_LE(x.offset + x.size, b.size());
      if (i) {
        EXPECT_GT(x.offset, (*ranges)[i - 1].offset + (*ranges)[i - 1].size);
      }
    }
  } else {
    EXPECT_TRUE(ranges.error().code == ErrorCode::kInvalidArgument ||
                ranges.error().code == ErrorCode::kMalformed)
        << ranges.error().message;
  }
  auto st = CheckNoWritableCode(*r);
  if (!st) {
    EXPECT_EQ(st.error().code, ErrorCode::kRefused);
  }
  return true;
}

void FlipLoop(const Bytes& file, int iterations, uint32_t seed) {
  ElfImage img = MustParse(file);
  // Where damage is most interesting: the headers and every plaintext section
  // the parser reads (interp, dynamic, dynsym, dynstr, versions).
  std::vector<FileRange> hot = {{0, img.header_size},
                                {img.phdr_offset, img.phdr_size},
                                {img.shdr_offset, img.shdr_size}};
  for (size_t i = 0; i < img.sections.size(); ++i)
    if (img.sections[i].size && !ClassifySection(img, i).encrypted)
      hot.push_back({img.sections[i].offset, img.sections[i].size});
  std::mt19937 rng(seed);
  Bytes work = file;  // an allocation of exactly the file's size
  ASSERT_EQ(work.capacity(), work.size());
  int parsed = 0, failed = 0;
  for (int iter = 0; iter < iterations; ++iter) {
    int flips = 1 + static_cast<int>(rng() % 4);
    std::vector<std::pair<size_t, uint8_t>> saved;
    for (int k = 0; k < flips; ++k) {
      size_t pos;
      if (rng() % 8 == 0) {
        pos = rng() % work.size();
      } else {
        const FileRange& h = hot[rng() % hot.size()];
        pos = static_cast<size_t>(h.offset + rng() % h.size);
      }
      saved.emplace_back(pos, work[pos]);
      switch (rng() % 4) {
        case 0: work[pos] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: work[pos] = static_cast<uint8_t>(rng()); break;
        case 2: work[pos] = (rng() & 1) ? 0x00 : 0xff; break;
        default: work[pos] = static_cast<uint8_t>(work[pos] + ((rng() & 1) ? 1 : -1)); break;
      }
    }
    if (Exercise(work))
      ++parsed;
    else
      ++failed;
    for (auto it = saved.rbegin(); it != saved.rend(); ++it) work[it->first] = it->second;
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "stopping at iteration " << iter;
      return;
    }
  }
  ASSERT_EQ(work, file);
  // Both outcomes must have happened, or the loop tested little.
  EXPECT_GT(parsed, iterations / 100);
  EXPECT_GT(failed, iterations / 100);
}

TEST(ElfFuzz, RandomByteFlipsOfBinTrueNeverCrash) { FlipLoop(TrueExe(), 20000, 0x5ea1d40u); }

TEST(ElfFuzz, RandomByteFlipsOfSelfExecutableNeverCrash) { FlipLoop(SelfExe(), 1500, 12345u); }

// Every byte of a .dynamic that holds a DT_RUNPATH, flipped three ways.
TEST(ElfSearchPaths, EveryByteOfDynamicFlippedNeverCrashes) {
  const Bytes& file = TrueExe();
  ElfImage img = MustParse(file);
  const ElfSection& d = img.sections[SectionIndex(img, ".dynamic")];
  Bytes b = WithNeededRetagged(DT_RUNPATH);
  int parsed = 0, refused = 0;
  for (uint64_t i = 0; i < d.size; ++i)
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      b[d.offset + i] ^= mask;
      if (Exercise(b)) ++parsed; else ++refused;
      b[d.offset + i] ^= mask;
    }
  EXPECT_GT(parsed, 0);
  EXPECT_GT(refused, 0);
}

// Random header fields written wholesale (not bit flips): e_* and the
// program/section headers of the dynamic-reading sections.
TEST(ElfFuzz, RandomHeaderFieldValues) {
  const Bytes& file = TrueExe();
  ElfImage img = MustParse(file);
  std::mt19937_64 rng(424242);
  const uint64_t interesting[] = {0, 1, 7, 8, 0x40, 0x7f, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff,
                                  0xffffffff, uint64_t{1} << 32, uint64_t{1} << 63, ~uint64_t{0},
                                  ~uint64_t{0} - 1, file.size(), file.size() - 1, file.size() + 1};
  Bytes work = file;
  for (int iter = 0; iter < 5000; ++iter) {
    // Pick a header field-sized slot: anywhere in the ELF header, a program header or a section header.
    uint64_t base, len;
    switch (rng() % 3) {
      case 0: base = 0; len = img.header_size; break;
      case 1: base = img.phdr_offset; len = img.phdr_size; break;
      default: base = img.shdr_offset; len = img.shdr_size; break;
    }
    unsigned width = 1u << (rng() % 4);  // 1, 2, 4 or 8 bytes
    uint64_t at = base + (rng() % (len / width)) * width;
    uint64_t value = (rng() & 1) ? interesting[rng() % std::size(interesting)] : rng();
    Bytes saved(work.begin() + at, work.begin() + at + width);
    std::memcpy(work.data() + at, &value, width);
    Exercise(work);
    std::copy(saved.begin(), saved.end(), work.begin() + at);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "stopping at iteration " << iter;
      return;
    }
  }
}

}  // namespace
}  // namespace sealdrop

namespace sealdrop {
namespace {

// Found while fuzzing: .gnu.version_r entries whose Vernaux chains all point
// into one shared chain made ParseElf quadratic (a 1 MiB file took over 25 s).
// The file (made by fuzz/findings/elf/make_verneed_blowup.py 64 1024) must be
// refused: the walk is bounded by the entries the section can hold.
TEST(ElfRegression, VersionNeedChainsThatShareEntriesAreRefused) {
  const char* dir = std::getenv("SEALDROP_TEST_DATA");
  ASSERT_NE(dir, nullptr) << "SEALDROP_TEST_DATA is not set";
  auto bytes = ReadFile(std::filesystem::path(dir) / "elf" / "verneed-shared-chain.elf", 1 << 20);
  ASSERT_TRUE(bytes.has_value()) << bytes.error().message;
  auto image = ParseElf(*bytes);
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code, ErrorCode::kMalformed);
  EXPECT_NE(image.error().message.find("visits more entries"), std::string::npos) << image.error().message;
}

}  // namespace
}  // namespace sealdrop
