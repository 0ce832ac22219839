// SHA-256, one-shot and incremental.
// Thread safety: a Sha256 object is not shared between threads.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "base/bytes.h"

namespace sealdrop {

using Digest = std::array<uint8_t, 32>;

Digest Sha256Of(ByteView data);
std::string Sha256Hex(ByteView data);

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void Update(ByteView data);
  // Returns the digest; the object must not be updated afterwards.
  Digest Final();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sealdrop
