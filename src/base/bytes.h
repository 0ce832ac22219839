// Byte containers.
//
// Bytes is an owned, growable buffer; ByteView a non-owning view that must not
// outlive what it points at. SecretBytes holds key material: it is wiped on
// destruction and on move-from, compares in constant time, and has no
// operator<< so it cannot end up in a log by accident. Reading its raw bytes
// needs Reveal(SecretAccess{}), which is easy to grep for.
//
// Thread safety: value types; no shared state.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sealdrop {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsString(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes ToBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }
inline std::string ToString(ByteView b) { return std::string(AsString(b)); }

// Keeps the large, short-lived buffers of the streaming paths (up to 16 MiB)
// on the heap instead of mmap/munmap per allocation, which costs a page fault
// per 4 KiB. Called once at the start of each executable.
void TuneAllocatorForStreaming();

// Overwrites memory in a way the compiler may not elide.
void SecureWipe(void* data, size_t size);
// Constant-time comparison; false if the sizes differ.
bool ConstantTimeEqual(ByteView a, ByteView b);

// A token type whose only purpose is to make reads of secrets explicit.
struct SecretAccess {};

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size) : data_(size) {}
  SecretBytes(ByteView bytes, SecretAccess) : data_(bytes.begin(), bytes.end()) {}
  SecretBytes(const SecretBytes& other) : data_(other.data_) {}
  SecretBytes& operator=(const SecretBytes& other);
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  ~SecretBytes();

  size_t size() const { return data_.size(); }
  bool empty() const { return data_.empty(); }
  ByteView Reveal(SecretAccess) const { return data_; }
  uint8_t* MutableData(SecretAccess) { return data_.data(); }
  bool operator==(const SecretBytes& other) const {
    return ConstantTimeEqual(data_, other.data_);
  }

 private:
  std::vector<uint8_t> data_;
};

}  // namespace sealdrop
