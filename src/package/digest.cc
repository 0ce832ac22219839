#include "package/digest.h"

#include "crypto/aead.h"
#include "package/chunked.h"

namespace sealdrop {

PackageDigest::PackageDigest(uint64_t prefix_size, uint64_t plaintext_size)
    : prefix_size_(prefix_size),
      plaintext_size_(plaintext_size),
      total_size_(prefix_size + SealedPayloadSize(plaintext_size)) {
  tag_start_ = prefix_size_ + ChunkPlaintextSize(plaintext_size_, 0);
}

PackageDigest PackageDigest::For(uint64_t prefix_size, const Manifest& m) {
  if (m.kind != "elf") return PackageDigest(prefix_size, m.plaintext_size);
  PackageDigest d(prefix_size, 0);
  d.total_size_ = prefix_size + m.payload_size;
  d.tag_start_ = d.total_size_;
  return d;
}

void PackageDigest::NextTag() {
  ++chunk_;
  tag_start_ += kGcmTagSize + ChunkPlaintextSize(plaintext_size_, chunk_);
}

void PackageDigest::Update(ByteView bytes) {
  while (!bytes.empty()) {
    if (position_ >= total_size_) {  // more than a whole package: Final fails
      position_ += bytes.size();
      return;
    }
    if (position_ < prefix_size_) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(bytes.size(), prefix_size_ - position_));
      hash_.Update(bytes.first(n));
      bytes = bytes.subspan(n);
      position_ += n;
      continue;
    }
    if (position_ < tag_start_) {  // ciphertext: skipped
      size_t n = static_cast<size_t>(std::min<uint64_t>(bytes.size(), tag_start_ - position_));
      bytes = bytes.subspan(n);
      position_ += n;
      continue;
    }
    uint64_t tag_end = tag_start_ + kGcmTagSize;
    size_t n = static_cast<size_t>(std::min<uint64_t>(bytes.size(), tag_end - position_));
    hash_.Update(bytes.first(n));
    bytes = bytes.subspan(n);
    position_ += n;
    if (position_ == tag_end) NextTag();
  }
}

Result<Digest> PackageDigest::Final() {
  if (position_ != total_size_)
    return Fail(ErrorCode::kMalformed, "the package does not have the size its manifest gives");
  return hash_.Final();
}

}  // namespace sealdrop
