// The protected-ELF payload (package/protected_elf.h), three ways, chosen by
// the first input byte:
//
//  0  DecryptProtectedElf on a file of fuzzer bytes, with a manifest whose
//     ranges, tags and plain hash come from the input (bounded, and passed
//     through SerializeManifest/ParseManifest so they obey the rules a
//     signed manifest obeys): the processor's view of a tampered package.
//  1  ElfSealStream over fuzzer-chosen ranges of fuzzer bytes, then
//     DecryptProtectedElf: must give back the input exactly; a second sealing
//     pass with the expected tags and another piece size must give the same
//     bytes; and one flipped byte anywhere must make decryption fail.
//  2  The same round trip on inputs PlanProtectedElf accepts (the seeds hold
//     a real program), plus: ParseElf reads the protected file exactly as it
//     reads the plaintext one (the loader's tables stay plaintext).
//
// The content key and nonce prefix are fixed; everything is deterministic.
#include <algorithm>
#include <cstdint>
#include <optional>

#include "crypto/aead.h"
#include "crypto/hpke.h"
#include "fuzz_util.h"
#include "package/chunked.h"
#include "package/protected_elf.h"

using namespace sealdrop;

namespace {

const SecretBytes& Kx() {
  static const SecretBytes kx = fuzz::FixedSecret(kAes256KeySize, 7);
  return kx;
}
const Bytes kNoncePrefix = {1, 2, 3, 4, 5, 6, 7};

// A manifest that passes ParseManifest except for what the caller fills in.
Manifest BaseManifest(uint64_t size) {
  Manifest m;
  m.package_id = std::string(32, 'a');
  m.program_id = 1;
  m.name = "fuzz";
  m.version = "1";
  m.kind = "elf";
  m.plaintext_size = size;
  m.payload_suite = kElfSuiteName;
  m.nonce_prefix = kNoncePrefix;
  m.payload_size = size;
  m.plain_sha256 = Bytes(32, 0);
  m.device_serial = "dev";
  m.recipient_key_id = std::string(64, 'b');
  m.envelope_suite = kHpkeSuiteName;
  m.envelope_enc = Bytes(kP256PointSize, 4);
  m.envelope_wrapped_key = Bytes(kAes256KeySize + kGcmTagSize, 5);
  m.order_id = std::string(32, 'c');
  m.issued_at = 1;
  m.server_key_id = std::string(64, 'd');
  return m;
}

// What a processor would hold: the manifest after it survived the parser.
std::optional<Manifest> Checked(const Manifest& m) {
  auto parsed = ParseManifest(AsBytes(SerializeManifest(m)));
  if (!parsed) return std::nullopt;
  return *parsed;
}

// Sorted, disjoint (possibly touching) ranges inside [0, size).
std::vector<FileRange> RangesFromInput(FuzzedDataProvider& in, uint64_t size) {
  std::vector<FileRange> ranges;
  uint64_t at = 0;
  const int count = in.ConsumeIntegralInRange<int>(1, 8);
  for (int i = 0; i < count && at < size; ++i) {
    uint64_t gap = in.ConsumeIntegralInRange<uint64_t>(0, size - at - 1);
    if (in.ConsumeBool()) gap = 0;
    uint64_t start = at + gap;
    uint64_t len = in.ConsumeIntegralInRange<uint64_t>(1, size - start);
    ranges.push_back({start, len});
    at = start + len;
  }
  return ranges;
}

Result<Bytes> Decrypt(ByteView file, const Manifest& m) {
  fuzz::MemFd fd(file);
  Bytes out;
  auto st = DecryptProtectedElf(fd.fd(), m, Kx(), [&](ByteView piece) -> Status {
    out.insert(out.end(), piece.begin(), piece.end());
    return Ok();
  });
  FUZZ_CHECK(out.size() <= m.payload_size, "the sink got more than the payload");
  if (!st) {
    FUZZ_CHECK(st.error().code == ErrorCode::kCryptoFailure || st.error().code == ErrorCode::kMalformed,
               "unexpected error: " + st.error().message);
    return std::unexpected(st.error());
  }
  return out;
}

Result<Bytes> Seal(ByteView file, const std::vector<FileRange>& ranges, ByteView plain, size_t piece,
                   std::vector<Bytes> expected, std::vector<Bytes>* tags) {
  SEALDROP_ASSIGN(ElfSealStream s, ElfSealStream::Create(file, ranges, plain, Kx(), kNoncePrefix, std::move(expected)));
  Bytes out;
  for (;;) {
    size_t before = out.size();
    SEALDROP_ASSIGN(bool more, s.Next(out, piece));
    if (!more) break;
    FUZZ_CHECK(out.size() > before && out.size() - before <= piece, "Next appended a wrong amount");
  }
  if (tags) *tags = s.tags();
  return out;
}

std::string Summary(const ElfImage& img) {
  std::string s = std::to_string(img.type) + "/" + std::to_string(img.machine) + "/" + std::to_string(img.entry) +
                  "/" + img.interpreter + "/" + img.soname + "/" + img.rpath + "/" + img.runpath + "/" +
                  std::to_string(img.exports) + (img.is_pie ? "/pie" : "") + (img.is_dynamic ? "/dyn" : "");
  for (const auto& n : img.needed) s += "|n:" + n;
  for (const auto& sym : img.imports) s += "|i:" + sym.name + "@" + sym.version;
  for (const auto& sec : img.sections) s += "|s:" + sec.name + ":" + std::to_string(sec.offset);
  for (const auto& seg : img.segments) s += "|p:" + std::to_string(seg.type) + ":" + std::to_string(seg.offset);
  return s;
}

// Seals `file`, checks both passes agree and that decryption restores it,
// then flips one byte and checks decryption refuses it.
void RoundTrip(FuzzedDataProvider& in, ByteView file, const std::vector<FileRange>& ranges, ByteView plain) {
  const size_t piece1 = in.ConsumeIntegralInRange<size_t>(1, 70000);
  const size_t piece2 = in.ConsumeIntegralInRange<size_t>(1, 70000);
  const uint64_t flip_at = in.ConsumeIntegral<uint64_t>();
  const uint8_t flip_bits = in.ConsumeIntegralInRange<uint8_t>(1, 255);
  std::vector<Bytes> tags;
  auto sealed = Seal(file, ranges, plain, piece1, {}, &tags);
  FUZZ_CHECK(sealed.has_value(), "sealing failed: " + sealed.error().message);
  FUZZ_CHECK(sealed->size() == file.size() && tags.size() == ranges.size(), "sealed size or tag count");
  auto second = Seal(file, ranges, plain, piece2, tags, nullptr);
  FUZZ_CHECK(second.has_value() && *second == *sealed, "the second sealing pass differs from the first");
  // Bytes outside the ranges stay as they were.
  uint64_t at = 0;
  for (const FileRange& r : ranges) {
    FUZZ_CHECK(std::equal(file.begin() + at, file.begin() + r.offset, sealed->begin() + at), "plaintext part changed");
    at = r.offset + r.size;
  }
  FUZZ_CHECK(std::equal(file.begin() + at, file.end(), sealed->begin() + at), "plaintext tail changed");

  Manifest m = BaseManifest(file.size());
  m.plain_sha256 = Bytes(plain.begin(), plain.end());
  for (size_t i = 0; i < ranges.size(); ++i) m.ranges.push_back({ranges[i].offset, ranges[i].size, tags[i]});
  auto checked = Checked(m);
  FUZZ_CHECK(checked.has_value(), "the manifest of a valid sealing does not parse");
  auto opened = Decrypt(*sealed, *checked);
  FUZZ_CHECK(opened.has_value(), "decrypting a fresh sealing failed: " + opened.error().message);
  FUZZ_CHECK(opened->size() == file.size() && std::equal(file.begin(), file.end(), opened->begin()),
             "decryption does not reproduce the input");

  Bytes tampered = *sealed;
  tampered[flip_at % tampered.size()] ^= flip_bits;
  auto bad = Decrypt(tampered, *checked);
  FUZZ_CHECK(!bad.has_value() && bad.error().code == ErrorCode::kCryptoFailure,
             "a flipped byte at " + std::to_string(flip_at % tampered.size()) + " was not detected");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const uint8_t mode = in.ConsumeIntegral<uint8_t>() % 3;
  if (mode == 0) {
    // A parameter block, then the file; the payload size is the file's or,
    // to reach the truncation paths, a declared one.
    const uint64_t split = in.ConsumeIntegralInRange<uint64_t>(0, 256);
    Bytes params = in.ConsumeBytes<uint8_t>(split);
    Bytes file = in.ConsumeRemainingBytes<uint8_t>();
    FuzzedDataProvider p(params.data(), params.size());
    const uint64_t payload = p.ConsumeBool() ? p.ConsumeIntegralInRange<uint64_t>(1, 1 << 17) : file.size();
    if (payload == 0) return 0;
    std::vector<FileRange> ranges = RangesFromInput(p, payload);
    Manifest m = BaseManifest(payload);
    Bytes plain = p.ConsumeBytes<uint8_t>(32);
    plain.resize(32);
    // PlainPartsHash needs the ranges inside what it hashes.
    m.plain_sha256 = p.ConsumeBool() && payload <= file.size() ? PlainPartsHash(ByteView(file).first(payload), ranges)
                                                               : plain;
    for (const FileRange& r : ranges) {
      Bytes t = p.ConsumeBytes<uint8_t>(kGcmTagSize);
      t.resize(kGcmTagSize);
      m.ranges.push_back({r.offset, r.size, std::move(t)});
    }
    auto checked = Checked(m);
    if (!checked) return 0;
    (void)Decrypt(file, *checked);
    return 0;
  }
  if (mode == 1) {
    const uint64_t split = in.ConsumeIntegralInRange<uint64_t>(0, 64);
    Bytes params = in.ConsumeBytes<uint8_t>(split);
    Bytes file = in.ConsumeRemainingBytes<uint8_t>();
    if (file.empty()) return 0;
    FuzzedDataProvider p(params.data(), params.size());
    std::vector<FileRange> ranges = RangesFromInput(p, file.size());
    RoundTrip(p, file, ranges, PlainPartsHash(file, ranges));
    return 0;
  }
  // mode 2: a program. Parameters come from a fixed-size header so the
  // program bytes keep their offsets under mutation.
  Bytes params = in.ConsumeBytes<uint8_t>(16);
  Bytes file = in.ConsumeRemainingBytes<uint8_t>();
  auto plan = PlanProtectedElf(file);
  if (!plan) return 0;
  FuzzedDataProvider p(params.data(), params.size());
  RoundTrip(p, file, plan->ranges, plan->plain_sha256);
  // readelf, the loader and `sealdrop inspect` read the stored package.
  std::vector<Bytes> tags;
  auto sealed = Seal(file, plan->ranges, plan->plain_sha256, 65536, {}, &tags);
  auto stored = ParseElf(*sealed);
  FUZZ_CHECK(stored.has_value(), "the protected file no longer parses as ELF: " + stored.error().message);
  FUZZ_CHECK(Summary(*stored) == Summary(plan->image), "the protected file's ELF tables read differently");
  return 0;
}
