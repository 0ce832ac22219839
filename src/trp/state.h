// The processor's state directory, for either backend.
//
// Layout of STATE (directory mode 0700; every file written atomically):
//   device.json              {"serial", "backend":"soft"|"tpm", "created_at",
//                            "identity_key_id", "keywrap_key_id", and for
//                            the TPM backend "tcti"}
// soft backend:
//   root.key                 32 random bytes, mode 0600: the root key. It never
//                            leaves this directory; everything secret below
//                            is sealed under it.
//   identity.key.sealed      AES-256-GCM(root, PKCS#8 of the signing key)
//   keywrap.key.sealed       AES-256-GCM(root, PKCS#8 of the key-wrap key)
//   identity.csr keywrap.csr the CSRs for the manufacturer CA
// tpm backend (docs/tpm.md):
//   identity.tss2.pem        the identity key, made in the TPM (TpmKeyFile)
//   keywrap.tss2.pem         the key-wrap key, made in the TPM
//   enrol-request.json       the request for the manufacturer CA (tpm/enrol.h)
// both:
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

struct InitOptions {
  std::string backend = "soft";  // "soft" or "tpm"
  std::string tcti;              // tpm: the TPM's TCTI; empty means kDefaultTcti
};
struct InitResult {
  std::string serial;
  std::filesystem::path identity_csr;   // soft
  std::filesystem::path keywrap_csr;    // soft
  std::filesystem::path enrol_request;  // tpm
};

// Creates STATE with fresh keys, and CSRs (soft) or the enrolment request
// (tpm). Refuses a non-empty directory; a failure leaves nothing behind.
Result<InitResult> InitProcessorState(const std::filesystem::path& state, const InitOptions& options = {});

// TPM backend: answers the manufacturer CA's enrolment challenge with the
// TPM (tpm/enrol.h); returns the response document.
Result<std::string> ActivateProcessor(const std::filesystem::path& state, std::string_view challenge_json);

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
  std::string tcti;                // tpm backend
};
Result<ProcessorInfo> ReadProcessorInfo(const std::filesystem::path& state);

class ProcessorState {
 public:
  // Loads and unseals everything (tpm: loads the keys into the TPM through
  // the tpm2 provider); fails with a sentence that says which install step
  // is missing, or that the TPM cannot load the keys.
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
