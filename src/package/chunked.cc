#include "package/chunked.h"

#include "base/reader.h"

namespace sealdrop {
namespace {
constexpr std::string_view kChunkAad = "sealdrop chunk v1";

std::array<uint8_t, kGcmNonceSize> ChunkNonce(ByteView prefix, uint64_t index, bool last) {
  std::array<uint8_t, kGcmNonceSize> nonce{};
  std::copy(prefix.begin(), prefix.end(), nonce.begin());
  StoreU32(nonce.data() + kChunkNoncePrefixSize, static_cast<uint32_t>(index));
  nonce[11] = last ? 1 : 0;
  return nonce;
}

Status CheckParams(const SecretBytes& kx, ByteView prefix, uint64_t size) {
  if (kx.size() != kAes256KeySize) return Fail(ErrorCode::kInvalidArgument, "content key must be 32 bytes");
  if (prefix.size() != kChunkNoncePrefixSize)
    return Fail(ErrorCode::kMalformed, "chunk nonce prefix must be 7 bytes");
  if (ChunkCount(size) > kMaxChunks) return Fail(ErrorCode::kTooLarge, "payload too large");
  return Ok();
}
}  // namespace

uint64_t ChunkCount(uint64_t plaintext_size) {
  return plaintext_size == 0 ? 1 : (plaintext_size + kChunkSize - 1) / kChunkSize;
}

uint64_t SealedPayloadSize(uint64_t plaintext_size) {
  return plaintext_size + ChunkCount(plaintext_size) * kGcmTagSize;
}

size_t ChunkPlaintextSize(uint64_t plaintext_size, uint64_t index) {
  uint64_t start = index * kChunkSize;
  if (start >= plaintext_size) return 0;
  return static_cast<size_t>(std::min<uint64_t>(kChunkSize, plaintext_size - start));
}

ChunkSealer::ChunkSealer(Aes256GcmRaw aead, Bytes prefix, uint64_t size)
    : aead_(std::move(aead)), prefix_(std::move(prefix)), size_(size), count_(ChunkCount(size)) {}

Result<ChunkSealer> ChunkSealer::Create(const SecretBytes& kx, ByteView prefix, uint64_t size) {
  SEALDROP_TRY(CheckParams(kx, prefix, size));
  SEALDROP_ASSIGN(auto aead, Aes256GcmRaw::Create(kx));
  return ChunkSealer(std::move(aead), Bytes(prefix.begin(), prefix.end()), size);
}

Status ChunkSealer::SealNext(Bytes& chunk) {
  if (done() || chunk.size() != ChunkPlaintextSize(size_, next_))
    return Fail(ErrorCode::kInvalidArgument, "chunk has the wrong size");
  chunk.resize(chunk.size() + kGcmTagSize);
  return SealNextInPlace(chunk);
}

Status ChunkSealer::SealNextInPlace(std::span<uint8_t> sealed) {
  if (done()) return Fail(ErrorCode::kWrongState, "all chunks are already sealed");
  if (sealed.size() != ChunkPlaintextSize(size_, next_) + kGcmTagSize)
    return Fail(ErrorCode::kInvalidArgument, "chunk has the wrong size");
  bool last = next_ + 1 == count_;
  auto nonce = ChunkNonce(prefix_, next_, last);
  size_t n = sealed.size() - kGcmTagSize;
  std::span<uint8_t, kGcmTagSize> tag(sealed.data() + n, kGcmTagSize);
  SEALDROP_TRY(aead_.SealInPlace(nonce, AsBytes(kChunkAad), sealed.first(n), tag));
  ++next_;
  return Ok();
}

ChunkOpener::ChunkOpener(Aes256GcmRaw aead, Bytes prefix, uint64_t size)
    : aead_(std::move(aead)), prefix_(std::move(prefix)), size_(size), count_(ChunkCount(size)) {}

Result<ChunkOpener> ChunkOpener::Create(const SecretBytes& kx, ByteView prefix, uint64_t size) {
  SEALDROP_TRY(CheckParams(kx, prefix, size));
  SEALDROP_ASSIGN(auto aead, Aes256GcmRaw::Create(kx));
  return ChunkOpener(std::move(aead), Bytes(prefix.begin(), prefix.end()), size);
}

size_t ChunkOpener::next_sealed_size() const {
  return done() ? 0 : ChunkPlaintextSize(size_, next_) + kGcmTagSize;
}

Status ChunkOpener::OpenNext(Bytes& chunk) {
  if (done() || chunk.size() != next_sealed_size()) {
    SecureWipe(chunk.data(), chunk.size());
    chunk.clear();
    return Fail(ErrorCode::kCryptoFailure, "the payload does not authenticate");
  }
  bool last = next_ + 1 == count_;
  auto nonce = ChunkNonce(prefix_, next_, last);
  size_t n = chunk.size() - kGcmTagSize;
  std::span<const uint8_t, kGcmTagSize> tag(chunk.data() + n, kGcmTagSize);
  auto st = aead_.OpenInPlace(nonce, AsBytes(kChunkAad), std::span(chunk.data(), n), tag);
  if (!st) {
    SecureWipe(chunk.data(), chunk.size());
    chunk.clear();
    return Fail(ErrorCode::kCryptoFailure, "the payload does not authenticate");
  }
  chunk.resize(n);
  ++next_;
  return Ok();
}

}  // namespace sealdrop
