// OpenSSL-level access to the pki types, for sealdrop's own .cc files (pki,
// protocol's TLS glue, tests). Never include this from a public header: the
// project's headers carry no OpenSSL types.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "crypto/ossl_internal.h"
#include "pki/cert.h"

namespace sealdrop {

struct Certificate::Impl {
  UniquePtr<X509> x509;
  EcPublicKey public_key;  // decoded once, so PublicKey() cannot fail
};

// Wraps an X509 that came from OpenSSL (for example a TLS peer's chain). Takes
// a new reference; the caller keeps its own. Applies the same checks as
// Certificate::FromDer (size, P-256 key, well-formed extensions).
Result<Certificate> WrapX509(X509* x509);
inline X509* RawX509(const Certificate& cert) { return cert.impl().x509.get(); }

struct TrustStore::Impl {
  UniquePtr<X509_STORE> store;  // the roots only; CRLs are handed to each verification
  std::vector<Certificate> roots;
  std::vector<UniquePtr<X509_CRL>> crls;  // at most one, the newest, per root
  std::vector<Certificate> crl_signers;   // crl_signers[i] verified crls[i] when it was added
};

namespace pki_internal {

using TimePoint = std::chrono::system_clock::time_point;

// One PEM block: its label ("CERTIFICATE") and the decoded bytes.
struct PemBlock {
  std::string label;
  Bytes der;
};

// Every PEM block in `text`, in order; `what` names the input in errors
// ("the certificate"). Text around the blocks is ignored, as openssl does, but
// a cut-off block, bad base64, encryption headers, a block larger than
// `max_der` or input larger than kMaxPemFileSize is an error, and so is input
// without any block.
Result<std::vector<PemBlock>> ParsePemBlocks(std::string_view text, std::string_view what,
                                             size_t max_der);
using ::sealdrop::EncodePem;  // crypto/ossl_internal.h

// Untrusted text made safe for a one-line message: at most max_size bytes,
// anything outside printable ASCII replaced by '?'.
std::string Printable(std::string_view text, size_t max_size = 64);

TimePoint FromAsn1Time(const ASN1_TIME* time);
UniquePtr<ASN1_TIME> ToAsn1Time(TimePoint time);
// "2031-05-04 12:00:00 UTC", for messages.
std::string FormatUtc(TimePoint time);

// The first entry with `nid` in `name` as UTF-8; "" if absent or unreadable.
std::string NameEntry(const X509_NAME* name, int nid);
// Number of entries with `nid` in `name`.
int CountNameEntries(const X509_NAME* name, int nid);

// The X.509 serial as lowercase hex ("-" in front if negative).
std::string SerialHexOf(const X509* cert);

// keyUsage bits in OpenSSL's KU_* encoding; nullopt if the extension is absent.
std::optional<uint32_t> KeyUsageOf(const X509* cert);

// The rules MakeCsrPem applies and CaIssue re-checks on untrusted CSRs.
Status CheckCommonName(std::string_view cn);
Status CheckDeviceSerial(std::string_view serial);
Status CheckHost(std::string_view host);

// A subjectAltName extension with a DNS or IP entry per host (checked with
// CheckHost).
Result<UniquePtr<X509_EXTENSION>> MakeSubjectAltName(const std::vector<std::string>& hosts);

// A CSR whose self-signature has been checked, with what the CA may use of
// it. The CA decides everything else.
struct ParsedCsr {
  EcPublicKey key;
  std::string common_name;
  std::string serial_number;
  std::vector<std::string> hosts;
  std::optional<uint32_t> key_usage;  // KU_* bits asked for, if any
};
Result<ParsedCsr> ParseCsrPem(std::string_view pem);

// What SignCertificate puts into a certificate. kCa is for roots (issuer ==
// nullptr) and for intermediate CAs (tests build long chains with them).
struct CertSpec {
  enum class Kind { kCa, kDevice, kServer };
  Kind kind = Kind::kDevice;
  std::string common_name;
  std::string serial_number;                      // kDevice
  std::vector<std::string> hosts;                 // kServer
  DeviceKeyRole role = DeviceKeyRole::kIdentity;  // kDevice
  TimePoint not_before;
  TimePoint not_after;
  Bytes tpm_ek_certificate_sha256;  // kDevice: non-empty adds the TPM binding extension
};
// The DER of the TPM binding extension's value up to the hash:
// SEQUENCE (41 bytes) { UTF8String "tpm", OCTET STRING (32 bytes) ...
Bytes TpmBindingPrefix();
// Signs with ECDSA-SHA256 under a fresh random serial. With issuer == nullptr
// the certificate is self-signed and issuer_key must be the subject's key.
Result<Certificate> SignCertificate(const CertSpec& spec, const EcPublicKey& subject_key,
                                    const Certificate* issuer, const EcPrivateKey& issuer_key);

// 16 random bytes, top bit clear (positive) and next bit set (no leading zero
// byte, so every serial prints as 32 hex digits).
Bytes RandomSerial();

struct CrlEntry {
  std::string serial_hex;
  TimePoint revoked_at;
};
// A v2 CRL with an authorityKeyIdentifier and a crlNumber.
Result<std::string> SignCrlPem(const Certificate& ca, const EcPrivateKey& ca_key,
                               const std::vector<CrlEntry>& revoked, uint64_t crl_number,
                               TimePoint this_update, TimePoint next_update);

}  // namespace pki_internal
}  // namespace sealdrop
