// The soft processor's state directory.
//
// Layout of STATE (directory mode 0700; every file written atomically):
//   device.json              {"serial", "backend":"soft", "created_at"}
//   root.key                 32 random bytes, mode 0600: the root key. It never
//                            leaves this directory; everything secret below
//                            is sealed under it.
//   identity.key.sealed      AES-256-GCM(root, PKCS#8 of the signing key)
//   keywrap.key.sealed       AES-256-GCM(root, PKCS#8 of the key-wrap key)
//   identity.csr keywrap.csr the CSRs for the manufacturer CA
//   identity.pem keywrap.pem the installed certificates (leaf, then issuers)
//   trust/vendor-N.pem       pinned vendor roots (several allowed)
//   licences/PACKAGE_ID.json released licences
//   staging/                 packages held before release (never handed out)
//
// The associated data of each sealed key names its role, so the two sealed
// files cannot be swapped. This is an honest emulation: whoever can read
// root.key (the processor's uid, or root) can read the keys. docs/threat-model.md
// says what that means; the TPM backend removes it.
//
// Thread safety: ProcessorState is immutable after Load and may be shared.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "crypto/ec.h"
#include "pki/cert.h"
#include "protocol/trp_session.h"

namespace sealdrop {

struct InitResult {
  std::string serial;
  std::filesystem::path identity_csr;
  std::filesystem::path keywrap_csr;
};

// Creates STATE with fresh keys and CSRs. Refuses a non-empty directory.
Result<InitResult> InitProcessorState(const std::filesystem::path& state);

// Installs certificates (each PEM file may hold a chain; the leaf's key says
// whether it is the identity or the key-wrap certificate) and vendor roots.
// The certificate must match this processor's key and serial.
Status InstallProcessorFiles(const std::filesystem::path& state,
                             const std::vector<std::filesystem::path>& certs,
                             const std::vector<std::filesystem::path>& trust);

struct ProcessorInfo {
  std::string serial;
  std::string backend;
  std::string identity_key_id;
  std::string keywrap_key_id;
  bool identity_installed = false;
  bool keywrap_installed = false;
  size_t vendor_roots = 0;
  std::string identity_not_after;  // ISO 8601, empty if not installed
};
Result<ProcessorInfo> ReadProcessorInfo(const std::filesystem::path& state);

class ProcessorState {
 public:
  // Loads and unseals everything; fails with a sentence that says which
  // install step is missing.
  // `display` is the path shown in messages when `state` is another name
  // for it (the confined /proc/self/fd/N path); empty means `state`.
  static Result<ProcessorState> Load(const std::filesystem::path& state,
                                     const std::filesystem::path& display = {});

  const std::filesystem::path& dir() const { return dir_; }
  const TrpIdentity& identity() const { return identity_; }
  const EcPrivateKey& keywrap_key() const { return *keywrap_key_; }
  const TrustStore& vendor_roots() const { return vendor_roots_; }
  // True if the state is hidden from programs (trp/confine.h).
  bool confined() const { return confined_; }
  void set_confined(bool confined) { confined_ = confined; }

 private:
  std::filesystem::path dir_;
  TrpIdentity identity_;
  std::optional<EcPrivateKey> keywrap_key_;
  TrustStore vendor_roots_;
  bool confined_ = false;
};

}  // namespace sealdrop
