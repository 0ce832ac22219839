// DIR/state.json of a CA directory (see ca.h): the record of every
// certificate issued, the CRL number and the CRL validity. Internal to pki.
//
// Format (JSON object):
//   "format":     "sealdrop-ca-state/1"
//   "crl_number": the number of the CRL in crl.pem
//   "crl_days":   validity of each new CRL, in days
//   "issued":     [ { "serial", "profile" ("device"|"server"),
//                     "role" ("identity"|"key-wrap", device only),
//                     "common_name", "device_serial", "hosts", "key_id",
//                     "not_before", "not_after", "issued_at",
//                     "revoked_at" (only if revoked) } ]
// Times are RFC 3339 UTC ("2031-05-04T12:00:00Z").
#pragma once

#include "base/time_format.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/error.h"
#include "pki/ca.h"

namespace sealdrop::pki_internal {

inline constexpr char kCaStateFormat[] = "sealdrop-ca-state/1";
// About 400 bytes per certificate: room for well over 100,000 of them.
inline constexpr size_t kMaxCaStateSize = 64 << 20;

struct CaState {
  uint64_t crl_number = 1;
  int crl_days = kDefaultCrlDays;
  std::vector<CaIssuedCert> issued;
};

std::string ToJson(const CaState& state);
// `path` names the file in errors.
Result<CaState> CaStateFromJson(std::string_view json, const std::filesystem::path& path);

Result<CaState> LoadCaState(const std::filesystem::path& file);
Status SaveCaState(const std::filesystem::path& file, const CaState& state);

const char* ProfileName(CertProfile profile);
const char* RoleName(DeviceKeyRole role);

}  // namespace sealdrop::pki_internal
