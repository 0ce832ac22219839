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

#include "base/bytes.h"
#include "base/error.h"

namespace sealdrop {

inline constexpr int kManifestFormat = 1;
inline constexpr char kManifestJwsType[] = "sealdrop-manifest+jws";
inline constexpr size_t kMaxManifestJsonSize = 64 * 1024;
inline constexpr size_t kMaxManifestStringSize = 256;

struct Manifest {
  int format = kManifestFormat;
  std::string package_id;   // random, 32 hex chars
  int64_t program_id = 0;
  std::string name;
  std::string version;
  std::string kind;         // "data" or "elf"
  uint64_t plaintext_size = 0;

  std::string payload_suite;  // kChunkSuiteName
  uint32_t chunk_size = 0;
  Bytes nonce_prefix;         // 7 bytes
  uint64_t chunks = 0;
  uint64_t payload_size = 0;  // sealed size

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
