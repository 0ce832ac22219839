// The package digest: the value the processor confirms (inner Received) and
// the release signature names.
//
//   digest = SHA-256( package prefix (magic, length, manifest JWS)
//                     || tag(chunk 0) || tag(chunk 1) || ... )
//
// Each 16-byte GCM tag authenticates its chunk's ciphertext under the
// package's content key Kx, which is fresh for this package and bound to the
// signed manifest through the key envelope, so the digest names one exact
// package while hashing about 0.02% of it. It is not a hash a third party can
// check against the ciphertext without Kx; it need not be: the processor
// computes it over bytes the inner TLS already authenticated, and at run time
// every chunk is checked against its tag. Hashing the whole ciphertext would
// cost a full SHA-256 pass on both server and processor (see
// docs/package-format.md).
//
// A protected ELF (kind "elf") carries its tags and the hash of its
// plaintext parts in the manifest itself, so its digest is SHA-256 of the
// prefix alone: the signed manifest already names every byte of the package.
//
// Thread safety: one object per stream.
#pragma once

#include <cstdint>
#include <optional>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/sha256.h"
#include "package/manifest.h"

namespace sealdrop {

class PackageDigest {
 public:
  // prefix_size: bytes before the payload; plaintext_size: from the manifest.
  PackageDigest(uint64_t prefix_size, uint64_t plaintext_size);
  // Picks the rule for the manifest's kind.
  static PackageDigest For(uint64_t prefix_size, const Manifest& manifest);
  // The package bytes in order, split anywhere.
  void Update(ByteView bytes);
  // Fails unless exactly the whole package was fed.
  Result<Digest> Final();

 private:
  void NextTag();
  Sha256 hash_;
  uint64_t prefix_size_;
  uint64_t plaintext_size_;
  uint64_t total_size_;
  uint64_t position_ = 0;
  uint64_t chunk_ = 0;
  uint64_t tag_start_ = 0;  // absolute offset of the current chunk's tag
};

}  // namespace sealdrop
