#include "package/protected_elf.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "base/files.h"
#include "base/reader.h"
#include "base/unique_fd.h"
#include "crypto/aead.h"
#include "crypto/hpke.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "package/chunked.h"

namespace sealdrop {
namespace {

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

// Runs an ElfSealStream to the end with pieces of at most `max` bytes.
// `out` starts with `junk` to check that Next appends.
Result<Bytes> RunStream(ByteView file, const ElfPlan& plan, const SecretBytes& kx, ByteView prefix,
                        std::vector<Bytes> expected, size_t max, std::vector<Bytes>* tags = nullptr) {
  SEALDROP_ASSIGN(ElfSealStream s, ElfSealStream::Create(file, plan.ranges, plan.plain_sha256, kx, prefix,
                                                         std::move(expected)));
  const Bytes junk = {0xde, 0xad};
  Bytes out = junk;
  uint64_t calls = 0;
  while (true) {
    size_t before = out.size();
    SEALDROP_ASSIGN(bool more, s.Next(out, max));
    if (!more) {
      if (out.size() != before) return Fail(ErrorCode::kInternal, "Next returned false but appended bytes");
      break;
    }
    if (out.size() - before > max) return Fail(ErrorCode::kInternal, "Next appended more than max");
    if (out.size() == before) return Fail(ErrorCode::kInternal, "Next made no progress");
    if (++calls > file.size() + plan.ranges.size() + 2) return Fail(ErrorCode::kInternal, "Next does not end");
  }
  // And once done it stays done.
  SEALDROP_ASSIGN(bool again, s.Next(out, max));
  if (again) return Fail(ErrorCode::kInternal, "Next restarted after the end");
  if (!std::equal(junk.begin(), junk.end(), out.begin())) return Fail(ErrorCode::kInternal, "Next overwrote out");
  if (tags) *tags = s.tags();
  return Bytes(out.begin() + static_cast<ptrdiff_t>(junk.size()), out.end());
}

struct Sealed {
  const Bytes* original = nullptr;
  ElfPlan plan;
  SecretBytes kx;
  Bytes prefix;
  std::vector<Bytes> tags;
  Bytes protected_bytes;
  Manifest manifest;
};

Manifest ElfManifest(const Sealed& s) {
  Manifest m;
  m.package_id = RandomHexId(16);
  m.program_id = 11;
  m.name = "prog";
  m.version = "2.0";
  m.kind = "elf";
  m.plaintext_size = s.original->size();
  m.payload_suite = kElfSuiteName;
  m.nonce_prefix = s.prefix;
  m.payload_size = s.original->size();
  for (size_t i = 0; i < s.plan.ranges.size(); ++i)
    m.ranges.push_back({s.plan.ranges[i].offset, s.plan.ranges[i].size, s.tags[i]});
  m.plain_sha256 = s.plan.plain_sha256;
  m.device_serial = "dev1";
  m.recipient_key_id = RandomHexId(32);
  m.envelope_suite = kHpkeSuiteName;
  m.envelope_enc = RandomBytes(65);
  m.envelope_wrapped_key = RandomBytes(48);
  m.order_id = RandomHexId(16);
  m.issued_at = 1700000000;
  m.server_key_id = RandomHexId(32);
  return m;
}

// Plans, streams twice (tags, then bytes checked against the tags) and builds the manifest.
void SealFile(const Bytes& file, Sealed& s) {
  s.original = &file;
  auto plan = PlanProtectedElf(file);
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  s.plan = std::move(*plan);
  s.kx = RandomSecret(32);
  s.prefix = RandomBytes(kChunkNoncePrefixSize);
  auto first = RunStream(file, s.plan, s.kx, s.prefix, {}, 64 * 1024, &s.tags);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  ASSERT_EQ(s.tags.size(), s.plan.ranges.size());
  for (const Bytes& t : s.tags) ASSERT_EQ(t.size(), kGcmTagSize);
  std::vector<Bytes> second_tags;
  auto second = RunStream(file, s.plan, s.kx, s.prefix, s.tags, 64 * 1024, &second_tags);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(second_tags, s.tags);
  EXPECT_EQ(*first, *second);  // deterministic for one key and prefix
  s.protected_bytes = std::move(*second);
  s.manifest = ElfManifest(s);
}

// Writes `bytes` to a memfd and runs DecryptProtectedElf on it.
Result<Bytes> Decrypt(ByteView bytes, const Manifest& m, const SecretBytes& kx) {
  UniqueFd fd(::memfd_create("protected-elf-test", MFD_CLOEXEC));
  if (!fd) return Fail(ErrorCode::kIo, "memfd_create failed");
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n <= 0) return Fail(ErrorCode::kIo, "write failed");
    done += static_cast<size_t>(n);
  }
  Bytes out;
  auto st = DecryptProtectedElf(fd.get(), m, kx, [&](ByteView piece) {
    out.insert(out.end(), piece.begin(), piece.end());
    return Ok();
  });
  if (!st) return std::unexpected(st.error());
  return out;
}

void ExpectDecryptFails(ByteView bytes, const Manifest& m, const SecretBytes& kx, ErrorCode code,
                        const std::string& what) {
  auto r = Decrypt(bytes, m, kx);
  ASSERT_FALSE(r.has_value()) << what << ": decrypted although it should not";
  EXPECT_EQ(r.error().code, code) << what << ": " << r.error().message;
}

bool Inside(uint64_t pos, uint64_t offset, uint64_t size) { return pos >= offset && pos - offset < size; }

bool InAnyRange(uint64_t pos, const std::vector<FileRange>& ranges) {
  for (const FileRange& r : ranges)
    if (Inside(pos, r.offset, r.size)) return true;
  return false;
}

// Shared sealed copies (sealing the test binary twice per test would be slow under ASan).
const Sealed& SealedTrue() {
  static Sealed* s = [] {
    auto* x = new Sealed;
    SealFile(TrueExe(), *x);
    return x;
  }();
  return *s;
}
const Sealed& SealedSelf() {
  static Sealed* s = [] {
    auto* x = new Sealed;
    SealFile(SelfExe(), *x);
    return x;
  }();
  return *s;
}

// ---------------------------------------------------------------------------
// PlanProtectedElf and PlainPartsHash.

TEST(ProtectedElfPlan, MatchesParserAndHash) {
  for (const Bytes* f : {&SelfExe(), &TrueExe()}) {
    auto plan = PlanProtectedElf(*f);
    ASSERT_TRUE(plan.has_value()) << plan.error().message;
    auto img = ParseElf(*f);
    ASSERT_TRUE(img.has_value());
    auto ranges = ProtectedRanges(*img, f->size());
    ASSERT_TRUE(ranges.has_value());
    EXPECT_EQ(plan->ranges, *ranges);
    EXPECT_LE(plan->ranges.size(), kMaxProtectedRanges);
    EXPECT_EQ(plan->image.needed, img->needed);
    ASSERT_EQ(plan->plain_sha256.size(), 32u);
    EXPECT_EQ(plan->plain_sha256, PlainPartsHash(*f, plan->ranges));
  }
}

TEST(ProtectedElfPlan, RefusesWhatCannotBeProtected) {
  auto r = PlanProtectedElf(ToBytes("#!/bin/sh\nexit 0\n"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kMalformed);

  Bytes b = TrueExe();
  b[EI_CLASS] = ELFCLASS32;
  r = PlanProtectedElf(b);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);

  // An executable stack is refused before anything is encrypted.
  b = TrueExe();
  Elf64_Ehdr eh;
  std::memcpy(&eh, b.data(), sizeof eh);
  bool changed = false;
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, b.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type == PT_GNU_STACK) {
      ph.p_flags |= PF_X;
      std::memcpy(b.data() + eh.e_phoff + i * sizeof ph, &ph, sizeof ph);
      changed = true;
    }
  }
  ASSERT_TRUE(changed);
  r = PlanProtectedElf(b);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kRefused);
}

TEST(ProtectedElfPlan, PlainPartsHashOracle) {
  Bytes file = RandomBytes(1000);
  auto oracle = [&](const std::vector<FileRange>& ranges) {
    Bytes rest;
    uint64_t at = 0;
    for (const FileRange& r : ranges) {
      rest.insert(rest.end(), file.begin() + at, file.begin() + r.offset);
      at = r.offset + r.size;
    }
    rest.insert(rest.end(), file.begin() + at, file.end());
    Digest d = Sha256Of(rest);
    return Bytes(d.begin(), d.end());
  };
  std::vector<std::vector<FileRange>> cases = {
      {},
      {{0, 1000}},
      {{0, 10}},
      {{990, 10}},
      {{0, 1}, {999, 1}},
      {{100, 50}, {151, 1}, {500, 250}},
      {{100, 50}, {150, 50}},  // touching
  };
  for (const auto& ranges : cases) EXPECT_EQ(PlainPartsHash(file, ranges), oracle(ranges));
  Digest whole = Sha256Of(file);
  EXPECT_EQ(PlainPartsHash(file, {}), Bytes(whole.begin(), whole.end()));
  Digest none = Sha256Of({});
  EXPECT_EQ(PlainPartsHash(file, {{0, 1000}}), Bytes(none.begin(), none.end()));

  // Bytes inside a range do not count; bytes outside do.
  std::vector<FileRange> ranges = {{100, 50}, {500, 250}};
  Bytes before = PlainPartsHash(file, ranges);
  Bytes changed = file;
  changed[120] ^= 1;
  changed[749] ^= 1;
  EXPECT_EQ(PlainPartsHash(changed, ranges), before);
  changed[99] ^= 1;
  EXPECT_NE(PlainPartsHash(changed, ranges), before);
  changed = file;
  changed[750] ^= 1;
  EXPECT_NE(PlainPartsHash(changed, ranges), before);
  // Moving a range's boundary changes the hash even when no byte changed.
  EXPECT_NE(PlainPartsHash(file, {{101, 49}, {500, 250}}), before);
}

// ---------------------------------------------------------------------------
// ElfRangeNonce / ElfRangeAad: the layout docs/package-format.md describes.

TEST(ProtectedElfFormat, NonceAndAadLayout) {
  Bytes prefix = {1, 2, 3, 4, 5, 6, 7};
  Bytes nonce = ElfRangeNonce(prefix, 0x0a0b0c0d);
  EXPECT_EQ(nonce, (Bytes{1, 2, 3, 4, 5, 6, 7, 0x0a, 0x0b, 0x0c, 0x0d, 0x02}));
  EXPECT_EQ(nonce.size(), kGcmNonceSize);
  Bytes sha(32, 0x33);
  Bytes aad = ElfRangeAad(sha, 3, 0x1122334455667788, 0x99);
  Bytes want = ToBytes("sealdrop elf v1");
  want.insert(want.end(), sha.begin(), sha.end());
  want.insert(want.end(), {0, 0, 0, 3});
  want.insert(want.end(), {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88});
  want.insert(want.end(), {0, 0, 0, 0, 0, 0, 0, 0x99});
  EXPECT_EQ(aad, want);
}

// ---------------------------------------------------------------------------
// Round trip.

void CheckRoundTrip(const Sealed& s) {
  const Bytes& original = *s.original;
  const Bytes& prot = s.protected_bytes;
  ASSERT_EQ(prot.size(), original.size());
  // Plaintext parts are identical; every range differs.
  uint64_t at = 0;
  for (const FileRange& r : s.plan.ranges) {
    EXPECT_TRUE(std::equal(original.begin() + at, original.begin() + r.offset, prot.begin() + at))
        << "plaintext before " << r.offset << " changed";
    EXPECT_FALSE(std::equal(original.begin() + r.offset, original.begin() + r.offset + r.size,
                            prot.begin() + r.offset))
        << "range at " << r.offset << " was not encrypted";
    at = r.offset + r.size;
  }
  EXPECT_TRUE(std::equal(original.begin() + at, original.end(), prot.begin() + at));
  EXPECT_EQ(PlainPartsHash(prot, s.plan.ranges), s.plan.plain_sha256);
  // The ELF header and the loader's view of the imports are unchanged.
  auto img = ParseElf(prot);
  ASSERT_TRUE(img.has_value()) << img.error().message;
  EXPECT_EQ(img->needed, s.plan.image.needed);
  EXPECT_EQ(img->interpreter, s.plan.image.interpreter);
  EXPECT_EQ(img->imports.size(), s.plan.image.imports.size());

  // Independently of DecryptProtectedElf: each range opens with the nonce and
  // AAD built by hand from the format description.
  auto aead = Aes256GcmRaw::Create(s.kx);
  ASSERT_TRUE(aead.has_value());
  for (size_t i = 0; i < s.plan.ranges.size(); ++i) {
    const FileRange& r = s.plan.ranges[i];
    Writer nonce;
    nonce.Append(s.prefix);
    nonce.U32(static_cast<uint32_t>(i));
    nonce.U8(0x02);
    Writer aad;
    aad.Append(std::string_view("sealdrop elf v1"));
    aad.Append(s.plan.plain_sha256);
    aad.U32(static_cast<uint32_t>(i));
    aad.U64(r.offset);
    aad.U64(r.size);
    Bytes data(prot.begin() + r.offset, prot.begin() + r.offset + r.size);
    auto st = aead->OpenInPlace(nonce.bytes(), aad.bytes(), data,
                                std::span<const uint8_t, kGcmTagSize>(s.tags[i].data(), kGcmTagSize));
    ASSERT_TRUE(st.has_value()) << "range " << i << ": " << st.error().message;
    EXPECT_TRUE(std::equal(data.begin(), data.end(), original.begin() + r.offset)) << i;
  }

  // Through a serialized and parsed manifest, the processor gets the file back.
  auto parsed = ParseManifest(AsBytes(SerializeManifest(s.manifest)));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  auto out = Decrypt(prot, *parsed, s.kx);
  ASSERT_TRUE(out.has_value()) << out.error().message;
  ASSERT_EQ(out->size(), original.size());
  EXPECT_TRUE(*out == original);
}

TEST(ProtectedElfRoundTrip, SelfExecutable) {
  const Sealed& s = SealedSelf();
  ASSERT_FALSE(s.protected_bytes.empty());
  CheckRoundTrip(s);
}

TEST(ProtectedElfRoundTrip, BinTrue) {
  const Sealed& s = SealedTrue();
  ASSERT_FALSE(s.protected_bytes.empty());
  CheckRoundTrip(s);
}

TEST(ProtectedElfRoundTrip, FreshKeysGiveDifferentCiphertext) {
  Sealed a, b;
  ASSERT_NO_FATAL_FAILURE(SealFile(TrueExe(), a));
  ASSERT_NO_FATAL_FAILURE(SealFile(TrueExe(), b));
  EXPECT_NE(a.protected_bytes, b.protected_bytes);
  EXPECT_NE(a.tags, b.tags);
  EXPECT_EQ(a.plan.plain_sha256, b.plan.plain_sha256);
}

TEST(ProtectedElfRoundTrip, SinkErrorIsPassedOn) {
  const Sealed& s = SealedTrue();
  UniqueFd fd(::memfd_create("protected-elf-test", MFD_CLOEXEC));
  ASSERT_TRUE(fd);
  ASSERT_EQ(::write(fd.get(), s.protected_bytes.data(), s.protected_bytes.size()),
            static_cast<ssize_t>(s.protected_bytes.size()));
  int calls = 0;
  auto st = DecryptProtectedElf(fd.get(), s.manifest, s.kx, [&](ByteView) -> Status {
    if (++calls == 2) return Fail(ErrorCode::kIo, "disk full");
    return Ok();
  });
  fd.reset();
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kIo);
  EXPECT_EQ(calls, 2);
}

// ---------------------------------------------------------------------------
// ElfSealStream.

TEST(ProtectedElfStream, PieceSizeDoesNotMatter) {
  const Sealed& s = SealedTrue();
  for (size_t max : {size_t{1}, size_t{7}, size_t{4096}, size_t{65536}, size_t{1} << 30}) {
    std::vector<Bytes> tags;
    auto out = RunStream(*s.original, s.plan, s.kx, s.prefix, {}, max, &tags);
    ASSERT_TRUE(out.has_value()) << max << ": " << out.error().message;
    EXPECT_TRUE(*out == s.protected_bytes) << max;
    EXPECT_EQ(tags, s.tags) << max;
    // And with the expected tags (pass 2).
    auto again = RunStream(*s.original, s.plan, s.kx, s.prefix, s.tags, max);
    ASSERT_TRUE(again.has_value()) << max << ": " << again.error().message;
    EXPECT_TRUE(*again == s.protected_bytes) << max;
  }
}

TEST(ProtectedElfStream, PieceSizeDoesNotMatterOnSelfExecutable) {
  const Sealed& s = SealedSelf();
  for (size_t max : {size_t{4096}, size_t{65536 + 3}}) {
    std::vector<Bytes> tags;
    auto out = RunStream(*s.original, s.plan, s.kx, s.prefix, {}, max, &tags);
    ASSERT_TRUE(out.has_value()) << max << ": " << out.error().message;
    EXPECT_TRUE(*out == s.protected_bytes) << max;
    EXPECT_EQ(tags, s.tags) << max;
  }
}

TEST(ProtectedElfStream, PiecesNeverCrossARangeBoundary) {
  // Each Next call stays inside one plaintext part or one range, so a caller
  // can rely on pieces never mixing the two.
  const Sealed& s = SealedTrue();
  auto stream = ElfSealStream::Create(*s.original, s.plan.ranges, s.plan.plain_sha256, s.kx, s.prefix);
  ASSERT_TRUE(stream.has_value());
  std::vector<uint64_t> boundaries;
  for (const FileRange& r : s.plan.ranges) {
    boundaries.push_back(r.offset);
    boundaries.push_back(r.offset + r.size);
  }
  Bytes out;
  uint64_t at = 0;
  while (true) {
    auto more = stream->Next(out, 1 << 20);
    ASSERT_TRUE(more.has_value()) << more.error().message;
    if (!*more) break;
    uint64_t end = out.size();
    for (uint64_t b : boundaries) EXPECT_FALSE(b > at && b < end) << "piece [" << at << "," << end << ") crosses " << b;
    at = end;
  }
  EXPECT_EQ(at, s.original->size());
}

TEST(ProtectedElfStream, SecondPassRefusesAChangedTag) {
  const Sealed& s = SealedTrue();
  for (size_t i = 0; i < s.tags.size(); ++i) {
    std::vector<Bytes> wrong = s.tags;
    wrong[i][5] ^= 0x40;
    auto out = RunStream(*s.original, s.plan, s.kx, s.prefix, wrong, 65536);
    ASSERT_FALSE(out.has_value()) << "tag " << i;
    EXPECT_EQ(out.error().code, ErrorCode::kIo) << out.error().message;
  }
}

TEST(ProtectedElfStream, SecondPassRefusesAChangedFile) {
  // The program file changed between the passes: a byte inside a range.
  const Sealed& s = SealedTrue();
  for (const FileRange& r : s.plan.ranges) {
    Bytes changed = *s.original;
    changed[r.offset + r.size / 2] ^= 0x01;
    auto out = RunStream(changed, s.plan, s.kx, s.prefix, s.tags, 4096);
    ASSERT_FALSE(out.has_value()) << "range at " << r.offset;
  }
}

TEST(ProtectedElfStream, CreateChecksArguments) {
  const Sealed& s = SealedTrue();
  auto bad_prefix = ElfSealStream::Create(*s.original, s.plan.ranges, s.plan.plain_sha256, s.kx,
                                          Bytes(6, 0));
  ASSERT_FALSE(bad_prefix.has_value());
  EXPECT_EQ(bad_prefix.error().code, ErrorCode::kInvalidArgument);
  bad_prefix = ElfSealStream::Create(*s.original, s.plan.ranges, s.plan.plain_sha256, s.kx, Bytes(8, 0));
  ASSERT_FALSE(bad_prefix.has_value());
  EXPECT_EQ(bad_prefix.error().code, ErrorCode::kInvalidArgument);

  std::vector<Bytes> fewer(s.tags.begin(), s.tags.end() - 1);
  auto bad_tags = ElfSealStream::Create(*s.original, s.plan.ranges, s.plan.plain_sha256, s.kx, s.prefix, fewer);
  ASSERT_FALSE(bad_tags.has_value());
  EXPECT_EQ(bad_tags.error().code, ErrorCode::kInvalidArgument);
  std::vector<Bytes> more = s.tags;
  more.push_back(Bytes(16, 0));
  bad_tags = ElfSealStream::Create(*s.original, s.plan.ranges, s.plan.plain_sha256, s.kx, s.prefix, more);
  ASSERT_FALSE(bad_tags.has_value());
  EXPECT_EQ(bad_tags.error().code, ErrorCode::kInvalidArgument);

  auto bad_key = ElfSealStream::Create(*s.original, s.plan.ranges, s.plan.plain_sha256, RandomSecret(16), s.prefix);
  EXPECT_FALSE(bad_key.has_value());
}

TEST(ProtectedElfStream, NoRangesCopiesTheFile) {
  Bytes file = RandomBytes(10000);
  auto stream = ElfSealStream::Create(file, {}, Bytes(32, 0), RandomSecret(32), RandomBytes(7));
  ASSERT_TRUE(stream.has_value());
  Bytes out;
  while (true) {
    auto more = stream->Next(out, 333);
    ASSERT_TRUE(more.has_value());
    if (!*more) break;
  }
  EXPECT_EQ(out, file);
  EXPECT_TRUE(stream->tags().empty());
}

// ---------------------------------------------------------------------------
// DecryptProtectedElf refuses every change.

TEST(ProtectedElfDecrypt, FlippedByteInEveryRange) {
  for (const Sealed* s : {&SealedTrue(), &SealedSelf()}) {
    ASSERT_FALSE(s->protected_bytes.empty());
    for (const FileRange& r : s->plan.ranges) {
      for (uint64_t pos : {r.offset, r.offset + r.size / 2, r.offset + r.size - 1}) {
        Bytes b = s->protected_bytes;
        b[pos] ^= 0x01;
        ExpectDecryptFails(b, s->manifest, s->kx, ErrorCode::kCryptoFailure,
                           "flip at " + std::to_string(pos) + " in range at " + std::to_string(r.offset));
      }
    }
  }
}

TEST(ProtectedElfDecrypt, FlippedPlaintextBytes) {
  const Sealed& s = SealedTrue();
  const ElfImage& img = s.plan.image;
  std::vector<std::pair<uint64_t, std::string>> positions = {
      {0, "ELF magic"},
      {offsetof(Elf64_Ehdr, e_entry), "ELF header e_entry"},
      {img.phdr_offset + 3, "program header table"},
      {img.shdr_offset + img.shdr_size - 1, "last byte of the section header table"},
      {s.original->size() - 1, "last byte of the file"},
  };
  auto by_name = [&](std::string_view name) -> const ElfSection* {
    for (const ElfSection& sec : img.sections)
      if (sec.name == name) return &sec;
    return nullptr;
  };
  for (const char* name : {".dynstr", ".interp", ".dynamic", ".dynsym", ".rela.dyn", ".shstrtab",
                           ".gnu.version_r", ".note.gnu.build-id"}) {
    const ElfSection* sec = by_name(name);
    ASSERT_NE(sec, nullptr) << name;
    positions.push_back({sec->offset + sec->size / 2, name});
  }
  // A gap byte: in no section, no header table and no range (alignment padding).
  auto covered = [&](uint64_t pos) {
    if (pos < img.header_size || Inside(pos, img.phdr_offset, img.phdr_size) ||
        Inside(pos, img.shdr_offset, img.shdr_size))
      return true;
    for (const ElfSection& sec : img.sections)
      if (sec.size && Inside(pos, sec.offset, sec.size)) return true;
    return false;
  };
  uint64_t gap = 0;
  for (uint64_t p = 0; p < s.original->size(); ++p)
    if (!covered(p)) {
      gap = p;
      break;
    }
  ASSERT_NE(gap, 0u) << "no gap byte in /bin/true";
  positions.push_back({gap, "gap byte"});

  for (const auto& [pos, what] : positions) {
    ASSERT_FALSE(InAnyRange(pos, s.plan.ranges)) << what;
    Bytes b = s.protected_bytes;
    b[pos] ^= 0x80;
    ExpectDecryptFails(b, s.manifest, s.kx, ErrorCode::kCryptoFailure, what);
  }
}

TEST(ProtectedElfDecrypt, ChangedManifest) {
  const Sealed& s = SealedTrue();
  const Bytes& p = s.protected_bytes;
  ASSERT_GE(s.manifest.ranges.size(), 2u);
  for (size_t i = 0; i < s.manifest.ranges.size(); ++i) {
    Manifest m = s.manifest;
    m.ranges[i].tag[0] ^= 0x01;
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "tag byte of range " + std::to_string(i));
    m = s.manifest;
    m.ranges[i].tag[15] ^= 0x80;
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "last tag byte of range " + std::to_string(i));
    m = s.manifest;
    m.ranges[i].offset += 1;
    m.ranges[i].size -= 1;
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "offset of range " + std::to_string(i));
    m = s.manifest;
    m.ranges[i].offset -= 1;
    m.ranges[i].size += 1;
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "offset - 1 of range " + std::to_string(i));
    m = s.manifest;
    m.ranges[i].size -= 1;
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "size of range " + std::to_string(i));
  }
  {
    Manifest m = s.manifest;
    m.plain_sha256[0] ^= 0x01;
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "plain_sha256");
    m = s.manifest;
    m.plain_sha256 = Bytes(32, 0);
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "plain_sha256 zero");
  }
  {
    Manifest m = s.manifest;
    std::swap(m.ranges[0].tag, m.ranges[1].tag);
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "tags of ranges 0 and 1 swapped");
    m = s.manifest;
    size_t last = m.ranges.size() - 1;
    std::swap(m.ranges[0].tag, m.ranges[last].tag);
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "tags of first and last range swapped");
  }
  {
    Manifest m = s.manifest;
    m.ranges.pop_back();
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "last range dropped");
    m = s.manifest;
    m.ranges.erase(m.ranges.begin());
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "first range dropped");
  }
  {
    // Two ranges merged into one spanning the gap between them.
    Manifest m = s.manifest;
    m.ranges[0].size = m.ranges[1].offset + m.ranges[1].size - m.ranges[0].offset;
    m.ranges.erase(m.ranges.begin() + 1);
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "ranges 0 and 1 merged");
  }
  {
    Manifest m = s.manifest;
    m.payload_size -= 1;
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "payload_size - 1");
  }
  {
    Manifest m = s.manifest;
    m.nonce_prefix[3] ^= 0x01;
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "wrong nonce prefix");
    m.nonce_prefix = RandomBytes(7);
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kCryptoFailure, "random nonce prefix");
  }
  {
    Manifest m = s.manifest;
    m.payload_suite = kChunkSuiteName;
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kMalformed, "chunk suite");
    m = s.manifest;
    m.ranges.clear();
    ExpectDecryptFails(p, m, s.kx, ErrorCode::kMalformed, "no ranges");
  }
  {
    // Reordered ranges (ParseManifest would refuse them; the decryptor must not succeed either).
    Manifest m = s.manifest;
    std::swap(m.ranges[0], m.ranges[1]);
    auto r = Decrypt(p, m, s.kx);
    EXPECT_FALSE(r.has_value()) << "reordered ranges decrypted";
  }
}

TEST(ProtectedElfDecrypt, WrongKey) {
  for (const Sealed* s : {&SealedTrue(), &SealedSelf()}) {
    ExpectDecryptFails(s->protected_bytes, s->manifest, RandomSecret(32), ErrorCode::kCryptoFailure, "random key");
    SecretBytes almost = s->kx;
    almost.MutableData(SecretAccess{})[31] ^= 0x01;
    ExpectDecryptFails(s->protected_bytes, s->manifest, almost, ErrorCode::kCryptoFailure, "one key bit");
  }
}

TEST(ProtectedElfDecrypt, TruncatedFile) {
  const Sealed& s = SealedTrue();
  const Bytes& p = s.protected_bytes;
  std::vector<uint64_t> cuts = {0, 1, 63, s.plan.ranges[0].offset, s.plan.ranges[0].offset + 1,
                                s.plan.ranges[0].offset + s.plan.ranges[0].size - 1,
                                s.plan.ranges.back().offset + s.plan.ranges.back().size,
                                p.size() / 2, p.size() - 1};
  for (uint64_t cut : cuts) {
    ExpectDecryptFails(ByteView(p).first(cut), s.manifest, s.kx, ErrorCode::kMalformed,
                       "cut at " + std::to_string(cut));
  }
  // Extra bytes after payload_size are not read.
  Bytes longer = p;
  longer.push_back(0);
  auto out = Decrypt(longer, s.manifest, s.kx);
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_TRUE(*out == *s.original);
}

TEST(ProtectedElfDecrypt, PlaintextInsteadOfCiphertext) {
  // A host that hands back the original (unencrypted) program is refused.
  const Sealed& s = SealedTrue();
  ExpectDecryptFails(*s.original, s.manifest, s.kx, ErrorCode::kCryptoFailure, "the plaintext program");
}

}  // namespace
}  // namespace sealdrop
