// The package file (E[Prog]) as streamed and stored:
//
//   magic "SEALDPK1" (8 bytes)
//   u32   manifest JWS length (big-endian, at most kMaxManifestJwsSize)
//   ...   manifest JWS, compact serialization, ASCII
//   ...   payload, exactly manifest.payload_size bytes (package/chunked.h)
//
// Nothing may follow the payload. The manifest comes first so the processor
// can check the signature, the recipient and the sizes before it accepts a
// single payload byte, and knows exactly how many bytes to expect.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/bytes.h"
#include "base/error.h"

namespace sealdrop {

inline constexpr char kPackageMagic[] = "SEALDPK1";  // 8 bytes, no NUL stored
inline constexpr size_t kPackageMagicSize = 8;
inline constexpr size_t kMaxManifestJwsSize = 128 * 1024;
inline constexpr size_t kPackagePrefixFixedSize = kPackageMagicSize + 4;

Bytes EncodePackagePrefix(std::string_view manifest_jws);

struct PackagePrefix {
  std::string manifest_jws;
  uint64_t payload_offset = 0;
};

// Parses the prefix from the start of `head`. Returns std::nullopt if more
// bytes are needed, kMalformed/kTooLarge if the bytes can never be a package.
Result<std::optional<PackagePrefix>> ParsePackagePrefix(ByteView head);

// Reads and parses the prefix from the start of a file descriptor.
Result<PackagePrefix> ReadPackagePrefix(int fd);

}  // namespace sealdrop
