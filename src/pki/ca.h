// A certificate authority kept in a directory (what `sealdrop-ca` drives).
//
// Layout of DIR (mode 0700):
//   ca.key     PKCS#8 PEM private key, mode 0600
//   ca.pem     self-signed root certificate
//   crl.pem    current CRL (rewritten by every revoke; empty list at init)
//   state.json every certificate issued (serial, profile, subject, key id,
//              validity, revocation time), the CRL number and CRL validity
//   issued/SERIAL.pem  every certificate issued
//   lock       held (flock) by every command that changes DIR
// Serials are random (see cert.h), so there is no serial counter. Every file
// is written atomically; a failed command leaves DIR unchanged. CaInit builds
// the whole directory next to DIR and renames it into place, so a crash
// leaves at worst a hidden ".NAME.init.*" sibling, never a half-made CA.
//
// Times: certificates and CRLs are backdated by kCaBackdate so that
// verifiers whose clocks lag a little still accept them. CRLs are valid for
// state.json's CRL days (kDefaultCrlDays unless CaRenewCrl changed it);
// verifiers refuse chains through a CA whose loaded CRL has expired, so
// re-sign it (CaRenewCrl, `sealdrop-ca crl`) before then.
//
// Thread safety: none within a process; across processes, commands that
// change DIR take the lock file DIR/lock and fail with kUnavailable while
// another holds it. ca.key must not be readable by group or others: loading
// it refuses such a file, as ssh does.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "base/error.h"
#include "pki/cert.h"

namespace sealdrop {

inline constexpr int kMaxValidityDays = 36500;
inline constexpr int kDefaultCrlDays = 30;
inline constexpr std::chrono::hours kCaBackdate{1};

// Creates a CA in DIR, which must not exist or be an empty directory.
struct CaInitOptions {
  std::string name;   // subject CN of the root
  int days = 3650;    // validity of the root
};
Status CaInit(const std::filesystem::path& dir, const CaInitOptions& options);

struct CaIssueOptions {
  CertProfile profile = CertProfile::kDevice;
  int days = 365;
  // For tests: shift the validity window (negative = in the past).
  int not_before_offset_days = 0;
  // Device keys proven to be in a TPM (tpm/enrol.h): the SHA-256 of the
  // TPM's EK certificate, which the certificate's TPM binding extension
  // names (cert.h). Empty for soft processors.
  Bytes tpm_ek_certificate_sha256;
};
// Checks the CSR's self-signature and the profile's rules, then issues.
// Returns the certificate PEM; also stores it under DIR/issued/.
// Rules: a device CSR has a device serial, no hosts, and asks for exactly one
// of digitalSignature (identity) or keyAgreement (key-wrap); a server CSR has
// hosts and no device serial. The validity may not end after the CA's; the
// CSR's key may not be the CA's, nor a key already certified for the other
// device role. Only the common name, device serial and hosts are taken from
// the CSR; the CA sets everything else.
Result<std::string> CaIssue(const std::filesystem::path& dir, std::string_view csr_pem,
                            const CaIssueOptions& options);

// Adds the serial (hex, as printed by Certificate::SerialHex) to the revoked
// list and rewrites DIR/crl.pem. Unknown serials are refused (kNotFound), and
// so is revoking twice. The serial may also be given as openssl prints it
// (upper case, ':' separators, leading zeros).
Status CaRevoke(const std::filesystem::path& dir, std::string_view serial_hex);

// Re-signs DIR/crl.pem with the same revoked list, valid for `days` from now;
// later revocations keep that validity.
Status CaRenewCrl(const std::filesystem::path& dir, int days = kDefaultCrlDays);

// Issues a device certificate for `key` without a CSR, for keys whose
// possession the caller proved another way: a TPM key-wrap key can only
// decrypt, so it cannot sign a CSR, and TPM enrolment (tpm/enrol.h) proves
// both keys by credential activation instead. Same checks and records as
// CaIssue; options.profile must be kDevice.
Result<std::string> CaIssueDeviceKey(const std::filesystem::path& dir, const EcPublicKey& key,
                                     std::string_view common_name, std::string_view device_serial,
                                     DeviceKeyRole role, const CaIssueOptions& options);

// One certificate the CA has issued, as recorded in state.json.
struct CaIssuedCert {
  std::string serial_hex;
  CertProfile profile = CertProfile::kDevice;
  DeviceKeyRole role = DeviceKeyRole::kIdentity;  // device certificates only
  std::string common_name;
  std::string device_serial;       // device certificates only
  std::vector<std::string> hosts;  // server certificates only
  std::string key_id;              // EcPublicKey::KeyId() of the subject key
  std::string tpm_ek_certificate_sha256;  // hex; device keys in a TPM only
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
  std::chrono::system_clock::time_point issued_at;
  bool revoked = false;
  std::chrono::system_clock::time_point revoked_at;  // if revoked
};
// Every certificate issued, oldest first.
Result<std::vector<CaIssuedCert>> CaList(const std::filesystem::path& dir);

}  // namespace sealdrop
