// The package manifest: what a package is, who it is for, and how to open it.
//
// Carried as the payload of a JWS (typ "sealdrop-manifest+jws") signed by the
// server, so every field, the key envelope included, is authenticated. The
// JSON is parsed strictly: every field is required, types are checked,
// unknown fields are refused, strings and binary fields have maximum sizes
// (kMax* below), and the suites must be the fixed names this version knows.
// docs/package-format.md documents each field.
//
// Thread safety: value type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"

namespace sealdrop {

inline constexpr int kManifestFormat = 1;
inline constexpr char kManifestJwsType[] = "sealdrop-manifest+jws";
inline constexpr size_t kMaxManifestJsonSize = 64 * 1024;
inline constexpr size_t kMaxManifestStringSize = 256;

// Suite of a protected ELF payload (package/protected_elf.h).
inline constexpr char kElfSuiteName[] = "A256GCM-ELF-SECTIONS";
inline constexpr size_t kMaxProtectedRanges = 512;

// One encrypted byte range of a protected ELF and its GCM tag.
struct SealedRange {
  uint64_t offset = 0;
  uint64_t size = 0;
  Bytes tag;  // 16 bytes
};

// What the licence lets the holder do with the plaintext. `export_plaintext`
// (JSON "export") lets 'sealdrop open' write a data package's plaintext to
// the host; without it the plaintext goes only to a program the processor
// runs. Never set for programs.
struct Rights {
  bool export_plaintext = false;
};

struct Manifest {
  int format = kManifestFormat;
  std::string package_id;   // random, 32 hex chars
  int64_t program_id = 0;
  std::string name;
  std::string version;
  std::string kind;         // "data" or "elf"
  uint64_t plaintext_size = 0;

  std::string payload_suite;  // kChunkSuiteName ("data") or kElfSuiteName ("elf")
  Bytes nonce_prefix;         // 7 bytes
  uint64_t payload_size = 0;  // sealed size
  // kChunkSuiteName only:
  uint32_t chunk_size = 0;
  uint64_t chunks = 0;
  // kElfSuiteName only: the encrypted ranges in file order (sorted, disjoint,
  // non-empty, inside the file) and SHA-256 over every other byte.
  std::vector<SealedRange> ranges;
  Bytes plain_sha256;  // 32 bytes
  Rights rights;

  std::string device_serial;  // recipient
  std::string recipient_key_id;

  std::string envelope_suite;  // kHpkeSuiteName
  Bytes envelope_enc;          // 65 bytes
  Bytes envelope_wrapped_key;  // 32 + 16 bytes

  std::string order_id;        // the order (purchase) or receipt (re-download)
  int64_t issued_at = 0;
  std::string server_key_id;
};

std::string SerializeManifest(const Manifest& manifest);
Result<Manifest> ParseManifest(ByteView json);

// HPKE info and associated data that bind the wrapped Kx to this package and
// recipient, so an envelope cannot be moved into another manifest.
Bytes EnvelopeInfo();
Bytes EnvelopeAad(const Manifest& manifest);

}  // namespace sealdrop
