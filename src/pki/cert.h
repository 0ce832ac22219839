// X.509 certificates, CSRs and chain verification for sealdrop's two PKIs:
// manufacturer CAs issue `device` certificates to processors, vendor CAs
// issue `server` certificates to sealdropd.
//
// Profiles (what the CA puts in, what Verify requires):
//   device: basicConstraints CA:FALSE, extendedKeyUsage clientAuth, keyUsage
//           exactly one of digitalSignature (the processor's inner-TLS
//           identity key) or keyAgreement (its key-wrap key, the HPKE
//           recipient); subject serialNumber = the device serial.
//   server: basicConstraints CA:FALSE, extendedKeyUsage serverAuth, keyUsage
//           digitalSignature, subjectAltName DNS/IP from the CSR.
// All keys are P-256; signatures ECDSA with SHA-256.
//
// Thread safety: Certificate and TrustStore are immutable after creation
// (TrustStore after its Add* calls) and may be shared between threads.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/ec.h"

namespace sealdrop {

enum class CertProfile { kDevice, kServer };
enum class DeviceKeyRole { kIdentity, kKeyWrap };

// Upper bounds for untrusted certificate material.
inline constexpr size_t kMaxCertDerSize = 16 * 1024;
inline constexpr size_t kMaxChainLength = 4;  // leaf + up to 3 issuers
inline constexpr size_t kMaxPemFileSize = 1 << 20;

class Certificate {
 public:
  static Result<Certificate> FromPem(std::string_view pem);
  // Every certificate in a PEM bundle, in order; at least one.
  static Result<std::vector<Certificate>> AllFromPem(std::string_view pem);
  static Result<Certificate> FromDer(ByteView der);

  std::string ToPem() const;
  Bytes ToDer() const;
  std::string SerialHex() const;          // X.509 serial, lowercase hex
  std::string SubjectCommonName() const;  // "" if absent
  std::string SubjectSerialNumber() const;  // device serial, "" if absent
  std::chrono::system_clock::time_point NotBefore() const;
  std::chrono::system_clock::time_point NotAfter() const;
  EcPublicKey PublicKey() const;
  bool IsCa() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }
  explicit Certificate(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<const Impl> impl_;
};

// A certificate signing request made by a processor or a server.
struct CsrRequest {
  std::string common_name;
  std::string serial_number;             // device serial (device CSRs)
  std::vector<std::string> hosts;        // DNS names or IP literals (server CSRs)
  DeviceKeyRole role = DeviceKeyRole::kIdentity;  // keyUsage asked for (device CSRs)
};
Result<std::string> MakeCsrPem(const EcPrivateKey& key, const CsrRequest& request);

// What a successful chain verification proves about the leaf.
struct VerifiedLeaf {
  Certificate leaf;
  std::string device_serial;  // subject serialNumber (device profile)
};

class TrustStore {
 public:
  TrustStore();
  // Adds every certificate in the PEM as a trust anchor (must be CA certs).
  Status AddRootsPem(std::string_view pem);
  // Adds a CRL; it must be signed by one of the roots already added.
  Status AddCrlPem(std::string_view pem);
  size_t root_count() const;

  // Verifies chain[0] (the leaf) up to a trusted root at time `now`, with
  // CRL checks for every issuer that has a CRL loaded, and checks that the
  // leaf fits `profile` (and `role` for device certificates). Failures are
  // kUntrustedPeer with a sentence naming the reason (expired, not yet valid,
  // revoked, unknown issuer, wrong profile, chain too long).
  Result<VerifiedLeaf> Verify(const std::vector<Certificate>& chain, CertProfile profile,
                              DeviceKeyRole role,
                              std::chrono::system_clock::time_point now) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace sealdrop
