#include "pki/ca_state.h"

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "base/files.h"

namespace sealdrop::pki_internal {
namespace {

using Json = nlohmann::json;
using TimePoint = std::chrono::system_clock::time_point;

// Throws nlohmann::json::exception (caught in CaStateFromJson) so that one
// handler covers every missing or mistyped field.
TimePoint TimeField(const Json& entry, const char* name) {
  auto parsed = ParseRfc3339(entry.at(name).get<std::string>());
  if (!parsed)
    throw Json::other_error::create(501, std::string("field ") + name + " is not an RFC 3339 time",
                                    &entry);
  return *parsed;
}

CaIssuedCert IssuedFromJson(const Json& e) {
  CaIssuedCert c;
  c.serial_hex = e.at("serial").get<std::string>();
  std::string profile = e.at("profile").get<std::string>();
  if (profile == "device") {
    c.profile = CertProfile::kDevice;
    std::string role = e.at("role").get<std::string>();
    if (role == "identity")
      c.role = DeviceKeyRole::kIdentity;
    else if (role == "key-wrap")
      c.role = DeviceKeyRole::kKeyWrap;
    else
      throw Json::other_error::create(501, "unknown role \"" + role + "\"", &e);
  } else if (profile == "server") {
    c.profile = CertProfile::kServer;
  } else {
    throw Json::other_error::create(501, "unknown profile \"" + profile + "\"", &e);
  }
  c.common_name = e.at("common_name").get<std::string>();
  c.device_serial = e.at("device_serial").get<std::string>();
  c.hosts = e.at("hosts").get<std::vector<std::string>>();
  c.key_id = e.at("key_id").get<std::string>();
  c.not_before = TimeField(e, "not_before");
  c.not_after = TimeField(e, "not_after");
  c.issued_at = TimeField(e, "issued_at");
  if (e.contains("tpm_ek_certificate_sha256"))
    c.tpm_ek_certificate_sha256 = e.at("tpm_ek_certificate_sha256").get<std::string>();
  if (e.contains("revoked_at")) {
    c.revoked = true;
    c.revoked_at = TimeField(e, "revoked_at");
  }
  return c;
}

}  // namespace

const char* ProfileName(CertProfile profile) {
  return profile == CertProfile::kDevice ? "device" : "server";
}

const char* RoleName(DeviceKeyRole role) {
  return role == DeviceKeyRole::kIdentity ? "identity" : "key-wrap";
}

std::string ToJson(const CaState& state) {
  Json issued = Json::array();
  for (const CaIssuedCert& c : state.issued) {
    Json e = {
        {"serial", c.serial_hex},
        {"profile", ProfileName(c.profile)},
        {"common_name", c.common_name},
        {"device_serial", c.device_serial},
        {"hosts", c.hosts},
        {"key_id", c.key_id},
        {"not_before", FormatRfc3339(c.not_before)},
        {"not_after", FormatRfc3339(c.not_after)},
        {"issued_at", FormatRfc3339(c.issued_at)},
    };
    if (c.profile == CertProfile::kDevice) e["role"] = RoleName(c.role);
    if (!c.tpm_ek_certificate_sha256.empty()) e["tpm_ek_certificate_sha256"] = c.tpm_ek_certificate_sha256;
    if (c.revoked) e["revoked_at"] = FormatRfc3339(c.revoked_at);
    issued.push_back(std::move(e));
  }
  Json root = {
      {"format", kCaStateFormat},
      {"crl_number", state.crl_number},
      {"crl_days", state.crl_days},
      {"issued", std::move(issued)},
  };
  return root.dump(2) + "\n";
}

Result<CaState> CaStateFromJson(std::string_view json, const std::filesystem::path& path) {
  auto damaged = [&](std::string_view why) {
    return Fail(ErrorCode::kMalformed,
                path.string() + " is damaged (" + std::string(why) + "); restore it from a backup");
  };
  Json root = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) return damaged("not a JSON object");
  try {
    if (root.at("format").get<std::string>() != kCaStateFormat)
      return damaged("unknown format; a newer sealdrop-ca may have written it");
    CaState state;
    state.crl_number = root.at("crl_number").get<uint64_t>();
    state.crl_days = root.at("crl_days").get<int>();
    if (state.crl_days < 1 || state.crl_days > kMaxValidityDays) return damaged("bad crl_days");
    for (const Json& e : root.at("issued")) state.issued.push_back(IssuedFromJson(e));
    return state;
  } catch (const Json::exception& e) {
    return damaged(e.what());
  }
}

Result<CaState> LoadCaState(const std::filesystem::path& file) {
  SEALDROP_ASSIGN(std::string text, ReadTextFile(file, kMaxCaStateSize));
  return CaStateFromJson(text, file);
}

Status SaveCaState(const std::filesystem::path& file, const CaState& state) {
  return WriteFileAtomic(file, ToJson(state), 0600);
}

}  // namespace sealdrop::pki_internal
