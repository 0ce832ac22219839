// A certificate authority kept in a directory (what `sealdrop-ca` drives).
//
// Layout of DIR:
//   ca.key     PKCS#8 PEM private key, mode 0600
//   ca.pem     self-signed root certificate
//   crl.pem    current CRL (rewritten by every revoke; empty list at init)
//   state.json next serial number, issued and revoked serials
//   issued/SERIAL.pem  every certificate issued
// Every file is written atomically; a failed command leaves DIR unchanged.
//
// Thread safety: none; one process at a time per DIR (the CLI takes a lock
// file DIR/lock).
#pragma once

#include <filesystem>
#include <string>

#include "base/error.h"
#include "pki/cert.h"

namespace sealdrop {

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
};
// Checks the CSR's self-signature and the profile's rules, then issues.
// Returns the certificate PEM; also stores it under DIR/issued/.
Result<std::string> CaIssue(const std::filesystem::path& dir, std::string_view csr_pem,
                            const CaIssueOptions& options);

// Adds the serial (hex, as printed by Certificate::SerialHex) to the revoked
// list and rewrites DIR/crl.pem. Unknown serials are refused.
Status CaRevoke(const std::filesystem::path& dir, std::string_view serial_hex);

}  // namespace sealdrop
