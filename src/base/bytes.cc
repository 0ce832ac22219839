#include "base/bytes.h"

#include <malloc.h>
#include <openssl/crypto.h>

namespace sealdrop {

void TuneAllocatorForStreaming() {
  mallopt(M_MMAP_THRESHOLD, 16 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

void SecureWipe(void* data, size_t size) {
  if (data != nullptr && size > 0) OPENSSL_cleanse(data, size);
}

bool ConstantTimeEqual(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

SecretBytes& SecretBytes::operator=(const SecretBytes& other) {
  if (this != &other) {
    SecureWipe(data_.data(), data_.size());
    data_ = other.data_;
  }
  return *this;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : data_(std::move(other.data_)) {
  other.data_.clear();
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    SecureWipe(data_.data(), data_.size());
    data_ = std::move(other.data_);
    other.data_.clear();
  }
  return *this;
}

SecretBytes::~SecretBytes() { SecureWipe(data_.data(), data_.size()); }

}  // namespace sealdrop
