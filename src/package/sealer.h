// Sealing a program for one processor, as a stream (server side).
//
// PackageSealer draws a fresh content key Kx, wraps it to the recipient's
// key-wrap public key with HPKE (envelope), builds and signs the manifest, and
// then produces the package file piece by piece: the prefix first, then at
// most 64 KiB (+ a tag) per call. Memory stays at one piece whatever the
// program's size.
//
// kind "data": one sealed chunk per call (package/chunked.h), read with pread.
// kind "elf": a protected ELF (package/protected_elf.h). The program is
// mapped read-only and sealed twice: a first pass learns the section tags the
// signed manifest carries, the second produces the bytes (AES-GCM is cheap
// next to the transfer; holding the ciphertext would cost the program's size
// in memory).
//
// Thread safety: one sealer per delivery, used from one thread.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/ec.h"
#include "package/manifest.h"

namespace sealdrop {

struct SealRequest {
  std::filesystem::path plaintext_path;
  int64_t program_id = 0;
  std::string name;
  std::string version;
  std::string kind = "data";  // "elf" needs a file PlanProtectedElf accepts
  std::optional<EcPublicKey> recipient_key;  // the processor's key-wrap key (certified); required
  std::string device_serial;
  std::string order_id;
  const EcPrivateKey* server_key = nullptr;  // signs the manifest; must outlive the sealer
  int64_t issued_at = 0;
  Rights rights;  // export is never granted for "elf"
  // What the catalogue recorded for the stored file. A file of another size
  // is refused at Create(); a file whose SHA-256 differs fails the last
  // Next() before the last piece (data, hashed as it is read) or Create()
  // (elf, hashed during the first sealing pass), so a replaced or damaged
  // file never becomes a complete package.
  // WARNING: left empty, nothing is checked; only tests and fuzzers that seal
  // a file they have just written may do that.
  std::optional<uint64_t> expected_size;
  std::string expected_sha256;  // lowercase hex
};

class PackageSealer {
 public:
  struct Impl;
  static Result<PackageSealer> Create(const SealRequest& request);
  PackageSealer(PackageSealer&&) noexcept;
  PackageSealer& operator=(PackageSealer&&) noexcept;
  ~PackageSealer();

  uint64_t total_size() const;
  const Manifest& manifest() const;
  const std::string& manifest_jws() const;
  // Appends the next piece of the package to `out`. Returns false when the
  // whole package has been produced.
  Result<bool> Next(Bytes& out);

 private:
  explicit PackageSealer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sealdrop
