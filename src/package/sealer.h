// Sealing a program for one processor, as a stream (server side).
//
// PackageSealer draws a fresh content key Kx, wraps it to the recipient's
// key-wrap public key with HPKE (envelope), builds and signs the manifest, and
// then produces the package file piece by piece: the prefix first, then one
// sealed 64 KiB chunk per call, reading the plaintext with pread. Memory stays
// at one chunk whatever the program's size.
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
  std::string kind = "data";
  std::optional<EcPublicKey> recipient_key;  // the processor's key-wrap key (certified); required
  std::string device_serial;
  std::string order_id;
  const EcPrivateKey* server_key = nullptr;  // signs the manifest; must outlive the sealer
  int64_t issued_at = 0;
};

class PackageSealer {
 public:
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
  struct Impl;
  explicit PackageSealer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sealdrop
