// The chunked payload of data packages (package/chunked.h) and its reader
// DecryptPayload (package/opener.h), three ways, chosen by the first byte:
//
//  0  The size arithmetic for any plaintext size a manifest may name, and a
//     ChunkOpener fed fuzzer bytes cut into fuzzer-chosen chunks: every
//     chunk must fail, wiped, and the opener must never report done.
//  1  Seal -> open round trip of a fuzzer plaintext (the input repeated to a
//     fuzzer-chosen length, so several 64 KiB chunks happen), then the
//     attacks the format exists to stop: a flipped byte, two chunks swapped,
//     the stream cut after a full chunk. Each must fail at the right chunk,
//     after exactly the chunks before it opened correctly.
//  2  DecryptPayload on a file: junk prefix of fuzzer length, then a real
//     sealed payload (optionally tampered, truncated or extended) or raw
//     fuzzer bytes, with a manifest whose sizes come from the input. The
//     sink may only ever see a chunk-aligned prefix of the true plaintext.
//
// Fixed content key and nonce prefix.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "crypto/aead.h"
#include "fuzz_util.h"
#include "package/chunked.h"
#include "package/opener.h"

using namespace sealdrop;

namespace {

const SecretBytes& Kx() {
  static const SecretBytes kx = fuzz::FixedSecret(kAes256KeySize, 9);
  return kx;
}
const Bytes kPrefix = {7, 6, 5, 4, 3, 2, 1};
constexpr uint64_t kMaxRoundTrip = 3 * kChunkSize + 1000;

// The seed repeated to `size` bytes (0, 1, 2, ... for an empty seed), by
// block copies: a byte loop here was two thirds of the target's time, all
// of it coverage callbacks on the loop's own comparisons.
Bytes Stretch(ByteView seed, uint64_t size) {
  Bytes out(size);
  if (size == 0) return out;
  if (seed.empty()) {
    for (size_t i = 0; i < std::min<uint64_t>(size, 256); ++i) out[i] = static_cast<uint8_t>(i);
    seed = ByteView(out).first(std::min<uint64_t>(size, 256));
  } else {
    std::memcpy(out.data(), seed.data(), std::min<uint64_t>(size, seed.size()));
  }
  for (uint64_t have = std::min<uint64_t>(size, seed.size()); have < size;) {
    const uint64_t n = std::min(have - have % seed.size(), size - have);
    std::memcpy(out.data() + have, out.data(), n);
    have += n;
  }
  return out;
}

std::vector<Bytes> SealAll(const Bytes& plain, FuzzedDataProvider& in) {
  auto sealer = ChunkSealer::Create(Kx(), kPrefix, plain.size());
  FUZZ_CHECK(sealer.has_value(), "ChunkSealer::Create: " + sealer.error().message);
  std::vector<Bytes> chunks;
  uint64_t at = 0;
  for (uint64_t i = 0; i < ChunkCount(plain.size()); ++i) {
    size_t n = ChunkPlaintextSize(plain.size(), i);
    Bytes c(plain.begin() + at, plain.begin() + at + n);
    at += n;
    if (in.ConsumeBool()) {
      FUZZ_CHECK(sealer->SealNext(c).has_value(), "SealNext failed");
    } else {
      c.resize(n + kGcmTagSize);
      FUZZ_CHECK(sealer->SealNextInPlace(c).has_value(), "SealNextInPlace failed");
    }
    FUZZ_CHECK(c.size() == n + kGcmTagSize, "sealed chunk size");
    chunks.push_back(std::move(c));
  }
  FUZZ_CHECK(sealer->done(), "sealer not done after every chunk");
  Bytes extra;
  FUZZ_CHECK(!sealer->SealNext(extra).has_value(), "sealer sealed past the end");
  return chunks;
}

// Opens `chunks` as a stream of `size` plaintext bytes; returns how many
// chunks opened, and appends their plaintext to `out`.
size_t OpenAll(const std::vector<Bytes>& chunks, uint64_t size, Bytes& out, bool* done) {
  auto opener = ChunkOpener::Create(Kx(), kPrefix, size);
  FUZZ_CHECK(opener.has_value(), "ChunkOpener::Create: " + opener.error().message);
  size_t opened = 0;
  for (const Bytes& sealed : chunks) {
    Bytes c = sealed;
    auto st = opener->OpenNext(c);
    if (!st) {
      FUZZ_CHECK(st.error().code == ErrorCode::kCryptoFailure && c.empty(), "a failed chunk was not wiped");
      break;
    }
    out.insert(out.end(), c.begin(), c.end());
    ++opened;
  }
  *done = opener->done();
  return opened;
}

void CheckArithmetic(uint64_t size, uint64_t probe) {
  const uint64_t count = ChunkCount(size);
  FUZZ_CHECK(count >= 1 && count <= kMaxChunks + 1, "chunk count");
  FUZZ_CHECK(SealedPayloadSize(size) == size + count * kGcmTagSize, "sealed size");
  const uint64_t last = count - 1;
  const uint64_t idx = probe % count;
  const uint64_t full = ChunkPlaintextSize(size, 0);
  FUZZ_CHECK(full == std::min<uint64_t>(size, kChunkSize), "first chunk size");
  if (idx < last) FUZZ_CHECK(ChunkPlaintextSize(size, idx) == kChunkSize, "inner chunk is not full");
  FUZZ_CHECK(last * kChunkSize + ChunkPlaintextSize(size, last) == size, "chunks do not add up to the size");
  FUZZ_CHECK(size == 0 || ChunkPlaintextSize(size, last) > 0, "empty last chunk of a non-empty plaintext");
  FUZZ_CHECK(ChunkPlaintextSize(size, count) == 0, "a chunk past the end");
}

void RawOpener(FuzzedDataProvider& in) {
  const uint64_t size = in.ConsumeIntegralInRange<uint64_t>(0, kMaxRoundTrip);
  auto opener = ChunkOpener::Create(Kx(), kPrefix, size);
  FUZZ_CHECK(opener.has_value(), "ChunkOpener::Create");
  while (in.remaining_bytes() > 0) {
    size_t n = in.ConsumeBool() ? opener->next_sealed_size() : in.ConsumeIntegralInRange<size_t>(0, kChunkSize + 64);
    Bytes c = in.ConsumeBytes<uint8_t>(n);
    auto st = opener->OpenNext(c);
    FUZZ_CHECK(!st.has_value(), "a forged chunk opened");
    FUZZ_CHECK(c.empty() && !opener->done(), "a failed chunk was not wiped, or the opener finished");
    if (in.ConsumeBool()) break;
  }
  Bytes bad_prefix = kPrefix;
  bad_prefix.push_back(0);
  FUZZ_CHECK(!ChunkOpener::Create(Kx(), bad_prefix, size).has_value(), "an 8-byte nonce prefix was accepted");
  FUZZ_CHECK(!ChunkOpener::Create(Kx(), kPrefix, kMaxChunks * kChunkSize + 1).has_value(),
             "a plaintext beyond kMaxChunks was accepted");
}

void RoundTrip(FuzzedDataProvider& in) {
  const uint64_t size = in.ConsumeIntegralInRange<uint64_t>(0, kMaxRoundTrip);
  const uint64_t flip = in.ConsumeIntegral<uint64_t>();
  const uint8_t bits = in.ConsumeIntegralInRange<uint8_t>(1, 255);
  const uint8_t attack = in.ConsumeIntegral<uint8_t>() % 3;
  Bytes params = in.ConsumeBytes<uint8_t>(8);
  const Bytes plain = Stretch(in.ConsumeRemainingBytes<uint8_t>(), size);
  FuzzedDataProvider p(params.data(), params.size());
  const std::vector<Bytes> chunks = SealAll(plain, p);

  Bytes out;
  bool done = false;
  FUZZ_CHECK(OpenAll(chunks, size, out, &done) == chunks.size() && done && out == plain,
             "a fresh sealing does not open to the plaintext");

  std::vector<Bytes> bad = chunks;
  size_t first_bad = 0;
  if (attack == 0) {
    const uint64_t total = SealedPayloadSize(size);
    uint64_t at = flip % total;
    while (at >= bad[first_bad].size()) at -= bad[first_bad++].size();
    bad[first_bad][at] ^= bits;
  } else if (attack == 1) {
    if (bad.size() < 2) return;
    size_t a = flip % bad.size(), b = (a + 1 + bits % (bad.size() - 1)) % bad.size();
    std::swap(bad[a], bad[b]);
    first_bad = std::min(a, b);
  } else {
    // Cut after k full chunks: chunk k-1 was not sealed as the last.
    if (bad.size() < 2) return;
    size_t k = 1 + flip % (bad.size() - 1);
    bad.resize(k);
    out.clear();
    FUZZ_CHECK(OpenAll(bad, k * kChunkSize, out, &done) == k - 1 && !done,
               "a truncated stream was accepted as complete");
    return;
  }
  out.clear();
  size_t opened = OpenAll(bad, size, out, &done);
  FUZZ_CHECK(opened == first_bad && !done, "tampering was not detected at chunk " + std::to_string(first_bad) +
                                               " (opened " + std::to_string(opened) + ")");
  FUZZ_CHECK(out.size() == first_bad * kChunkSize && std::equal(out.begin(), out.end(), plain.begin()),
             "chunks before the tampered one did not open to the plaintext");
}

Manifest DataManifest(uint64_t plaintext_size) {
  Manifest m;
  m.kind = "data";
  m.plaintext_size = plaintext_size;
  m.payload_suite = kChunkSuiteName;
  m.chunk_size = kChunkSize;
  m.nonce_prefix = kPrefix;
  m.chunks = ChunkCount(plaintext_size);
  m.payload_size = SealedPayloadSize(plaintext_size);
  return m;
}

void OnFile(FuzzedDataProvider& in) {
  const uint64_t size = in.ConsumeIntegralInRange<uint64_t>(0, kMaxRoundTrip);
  const uint64_t offset = in.ConsumeIntegralInRange<uint64_t>(0, 64);
  const uint8_t how = in.ConsumeIntegral<uint8_t>() % 5;  // 0 intact, 1 flip, 2 cut, 3 extend, 4 raw
  const uint64_t where = in.ConsumeIntegral<uint64_t>();
  Bytes params = in.ConsumeBytes<uint8_t>(8);
  Bytes rest = in.ConsumeRemainingBytes<uint8_t>();
  const Bytes plain = Stretch(rest, size);
  FuzzedDataProvider p(params.data(), params.size());

  Bytes file = Stretch(rest, offset);
  Bytes payload;
  if (how == 4) {
    payload = rest;
  } else {
    for (const Bytes& c : SealAll(plain, p)) payload.insert(payload.end(), c.begin(), c.end());
    if (how == 1) payload[where % payload.size()] ^= 0x01;
    if (how == 2) payload.resize(where % payload.size());
    if (how == 3) payload.push_back(0);
  }
  file.insert(file.end(), payload.begin(), payload.end());
  fuzz::MemFd fd(file);
  Bytes out;
  auto st = DecryptPayload(fd.fd(), offset, DataManifest(size), Kx(), [&](ByteView piece) -> Status {
    out.insert(out.end(), piece.begin(), piece.end());
    return Ok();
  });
  if (how == 0) {
    FUZZ_CHECK(st.has_value() && out == plain, "an intact payload did not decrypt to its plaintext");
    return;
  }
  if (how == 2 || how == 3 || (how == 4 && rest.size() != SealedPayloadSize(size))) {
    FUZZ_CHECK(!st && st.error().code == ErrorCode::kMalformed && out.empty(),
               "a payload of the wrong size was read");
    return;
  }
  FUZZ_CHECK(!st.has_value(), "a tampered or forged payload decrypted");
  FUZZ_CHECK(out.size() % kChunkSize == 0 && out.size() <= plain.size() &&
                 std::equal(out.begin(), out.end(), plain.begin()),
             "the sink saw bytes that are not an authenticated prefix of the plaintext");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegral<uint8_t>() % 3) {
    case 0:
      CheckArithmetic(in.ConsumeIntegralInRange<uint64_t>(0, kMaxChunks * kChunkSize), in.ConsumeIntegral<uint64_t>());
      RawOpener(in);
      break;
    case 1:
      RoundTrip(in);
      break;
    default:
      OnFile(in);
      break;
  }
  return 0;
}
