// The package file (E[Prog]) as streamed and stored:
//
//   magic "SEALDPK1" (8 bytes)
//   u32   manifest JWS length (big-endian, at most kMaxManifestJwsSize)
//   ...   manifest JWS, compact serialization, ASCII
//   ...   payload, exactly manifest.payload_size bytes (package/chunked.h)
//
// Nothing may follow the payload. The manifest comes first so the processor
// can check the signature, the recipient and the sizes before it accepts a
// single payload byte, and knows exactly how many bytes to expect. Packages
// of both kinds travel this way.
//
// A protected ELF (kind "elf") is stored differently, ELF first, so that
// readelf, objdump and the host's own tools read the stored file:
//
//   ...   payload: the protected ELF, exactly manifest.payload_size bytes
//   ...   manifest JWS
//   u32   manifest JWS length (big-endian)
//   magic "SEALDPE1" (8 bytes)
//
// The processor rearranges a protected ELF while staging it; both layouts
// have the same size. ReadPackageLayout reads either.
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

inline constexpr char kElfTrailerMagic[] = "SEALDPE1";  // 8 bytes, no NUL stored
inline constexpr size_t kElfTrailerFixedSize = 4 + kPackageMagicSize;

Bytes EncodeElfTrailer(std::string_view manifest_jws);

// A stored package of either layout. The caller checks payload_size against
// the verified manifest.
struct PackageLayout {
  std::string manifest_jws;
  uint64_t payload_offset = 0;
  uint64_t payload_size = 0;
  bool elf_first = false;
};
Result<PackageLayout> ReadPackageLayout(int fd);

}  // namespace sealdrop
