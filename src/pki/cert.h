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
// All keys are P-256; signatures ECDSA with SHA-256. Every certificate also
// carries subjectKeyIdentifier and authorityKeyIdentifier; serials are 16
// random bytes. Common names are 1-64 printable ASCII characters; device
// serials 1-64 characters from A-Z a-z 0-9 - . : (X.520 PrintableString).
//
// Parsing is for untrusted input: DER larger than kMaxCertDerSize, PEM larger
// than kMaxPemFileSize, trailing bytes after the DER, duplicate extensions and
// keys other than P-256 are rejected (kMalformed or kTooLarge).
//
// Thread safety: Certificate and TrustStore are immutable after creation
// (TrustStore after its Add* calls) and may be shared between threads.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/ec.h"

namespace sealdrop {

enum class CertProfile { kDevice, kServer };

// Device certificates of processors whose keys are in a TPM carry the TPM
// binding extension (non-critical, this OID, a UUID arc):
//   SEQUENCE { backend UTF8String "tpm", ekCertificate OCTET STRING (SHA-256
//              of the DER of the TPM's EK certificate) }
// The manufacturer CA adds it only after credential activation proved the key
// is in that TPM (docs/tpm.md section 3).
inline constexpr char kTpmBindingOid[] = "2.25.65878691943607277190943474957079852736";
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
  // The SHA-256 of the EK certificate named by the TPM binding extension;
  // empty if the certificate has none (or one not in the form above).
  Bytes TpmEkCertificateSha256() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }
  explicit Certificate(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<const Impl> impl_;
};

// A certificate signing request made by a processor or a server. A device
// CSR sets serial_number (and role, sent as the keyUsage asked for); a server
// CSR sets hosts instead. MakeCsrPem refuses a request that sets both or
// neither.
struct CsrRequest {
  std::string common_name;
  std::string serial_number;             // device serial (device CSRs)
  std::vector<std::string> hosts;        // DNS names or IP literals (server CSRs)
  DeviceKeyRole role = DeviceKeyRole::kIdentity;  // keyUsage asked for (device CSRs)
};
Result<std::string> MakeCsrPem(const EcPrivateKey& key, const CsrRequest& request);

// What a CSR asks for, once its self-signature has verified (kMalformed
// otherwise): for callers that check a request before handing it to CaIssue.
struct CsrSummary {
  EcPublicKey key;
  std::string common_name;
  std::string serial_number;
};
Result<CsrSummary> ReadCsrPem(std::string_view pem);

// The device serial rule above (1-64 of A-Z a-z 0-9 - . :), for callers that
// take a serial from elsewhere than a CSR; kInvalidArgument naming the rule.
Status CheckDeviceSerial(std::string_view serial);

// What a successful chain verification proves about the leaf.
struct VerifiedLeaf {
  Certificate leaf;
  std::string device_serial;  // subject serialNumber (device profile)
};

// How every Verify failure caused by a loaded CRL (expired, not yet valid,
// unusable) begins: a fault of the verifier's own configuration, not of the
// certificate, which callers may word differently for the peer.
inline constexpr std::string_view kCrlProblemPrefix = "cannot check whether the certificate was revoked";

// Trust anchors (self-signed CA certificates) and their CRLs.
//
// Revocation is checked per issuer: every certificate in a chain whose issuer
// has a CRL loaded is checked against that CRL (OpenSSL's CRL_CHECK_ALL), and
// a certificate whose issuer has none is accepted without a revocation check.
// A loaded CRL that is expired (past its nextUpdate at `now`) or not yet valid
// fails every chain through that issuer: a stale CRL is not evidence that a
// certificate is still good, so refresh CRLs before they expire (the CA
// re-signs its CRL with `sealdrop-ca crl`). For each issuer only the newest
// CRL loaded (by thisUpdate) is kept.
//
// Copies of a TrustStore share their roots and CRLs.
class TrustStore {
 public:
  TrustStore();
  // Adds every certificate in the PEM as a trust anchor (must be
  // self-signed CA certificates); on error none of them is added.
  Status AddRootsPem(std::string_view pem);
  // Adds a CRL; it must be signed by one of the roots already added.
  Status AddCrlPem(std::string_view pem);
  size_t root_count() const;

  // The CRLs loaded, one per issuer: for expiry monitoring (a CRL past its
  // nextUpdate fails every chain through its issuer, see above).
  struct CrlStatus {
    std::string issuer;  // the issuer's common name, kept printable
    std::chrono::system_clock::time_point next_update;  // max() if the CRL has none
  };
  std::vector<CrlStatus> Crls() const;

  // Verifies chain[0] (the leaf) up to a trusted root at time `now`, with
  // CRL checks for every issuer that has a CRL loaded, and checks that the
  // leaf fits `profile` (and `role` for device certificates). chain[1..] are
  // untrusted intermediates (the root may be among them); at most
  // kMaxChainLength certificates, counting the root, make a chain. Failures
  // are kUntrustedPeer with one sentence naming the reason: "the certificate
  // has expired", "is not yet valid", "was revoked", "is not issued by a
  // trusted manufacturer CA" (vendor CA for servers), "chain is too long",
  // "has the wrong profile/key usage", or a CRL that cannot be used.
  Result<VerifiedLeaf> Verify(const std::vector<Certificate>& chain, CertProfile profile,
                              DeviceKeyRole role,
                              std::chrono::system_clock::time_point now) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace sealdrop
