#include "protocol/messages.h"

#include <nlohmann/json.hpp>

#include "base/encoding.h"

namespace sealdrop {
namespace {
using nlohmann::json;

Result<json> ParseObject(ByteView bytes, size_t max, std::string_view what) {
  if (bytes.size() > max) return Fail(ErrorCode::kTooLarge, std::string(what) + " is too large");
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Fail(ErrorCode::kMalformed, std::string(what) + " is not a JSON object");
  return j;
}

// Reads an optional string member; present members must be strings within
// the size limit.
Status OptStr(const json& j, const char* key, std::string& out, size_t max = kMaxFieldSize) {
  auto it = j.find(key);
  if (it == j.end()) return Ok();
  if (!it->is_string()) return Fail(ErrorCode::kMalformed, std::string("\"") + key + "\" is not a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max) return Fail(ErrorCode::kTooLarge, std::string("\"") + key + "\" is too long");
  out = s;
  return Ok();
}
Status OptInt(const json& j, const char* key, int64_t& out) {
  auto it = j.find(key);
  if (it == j.end()) return Ok();
  if (!it->is_number_integer()) return Fail(ErrorCode::kMalformed, std::string("\"") + key + "\" is not an integer");
  out = it->get<int64_t>();
  return Ok();
}

// Signed payloads: exact member set, every member required.
struct Strict {
  const json& j;
  std::string what;
  Status Keys(std::initializer_list<const char*> keys) const {
    if (j.size() != keys.size()) return Fail(ErrorCode::kMalformed, what + " has missing or unknown members");
    for (auto k : keys)
      if (!j.contains(k)) return Fail(ErrorCode::kMalformed, what + " has no \"" + k + "\"");
    return Ok();
  }
  Result<std::string> Str(const char* key, size_t max = kMaxFieldSize) const {
    const json& v = j.at(key);
    if (!v.is_string() || v.get_ref<const std::string&>().size() > max)
      return Fail(ErrorCode::kMalformed, what + "." + key + " is not a valid string");
    return v.get<std::string>();
  }
  Result<int64_t> Int(const char* key) const {
    const json& v = j.at(key);
    if (!v.is_number_integer()) return Fail(ErrorCode::kMalformed, what + "." + key + " is not an integer");
    return v.get<int64_t>();
  }
};
}  // namespace

std::string EncodeControl(const ControlMessage& m) {
  json j = {{"type", m.type}};
  auto put = [&](const char* k, const std::string& v) {
    if (!v.empty()) j[k] = v;
  };
  put("user", m.user);
  put("password", m.password);
  put("program", m.program);
  put("version", m.version);
  put("idempotency_key", m.idempotency_key);
  put("order_id", m.order_id);
  put("receipt", m.receipt);
  put("release", m.release);
  put("code", m.code);
  put("message", m.message);
  put("package_digest", m.package_digest);
  put("token", m.token);
  if (m.remember) j["remember"] = true;
  if (m.again) j["again"] = true;
  if (m.type == "welcome" || m.type == "balance" || m.type == "charged") j["balance"] = m.balance;
  if (m.type == "order") {
    j["price"] = m.price;
    j["size"] = m.size;
    j["charge_required"] = m.charge_required;
  }
  if (m.type == "charged") j["amount"] = m.amount;
  if (m.type == "receipts") j["receipts"] = m.receipts;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<ControlMessage> ParseControl(std::string_view text, size_t max_size) {
  SEALDROP_ASSIGN(json j, ParseObject(AsBytes(text), max_size, "the control message"));
  ControlMessage m;
  auto type = j.find("type");
  if (type == j.end() || !type->is_string())
    return Fail(ErrorCode::kMalformed, "the control message has no type");
  m.type = type->get<std::string>();
  if (m.type.size() > 32) return Fail(ErrorCode::kMalformed, "the control message type is too long");
  SEALDROP_TRY(OptStr(j, "user", m.user));
  SEALDROP_TRY(OptStr(j, "password", m.password, 1024));
  SEALDROP_TRY(OptStr(j, "program", m.program));
  SEALDROP_TRY(OptStr(j, "version", m.version));
  SEALDROP_TRY(OptStr(j, "idempotency_key", m.idempotency_key));
  SEALDROP_TRY(OptStr(j, "order_id", m.order_id));
  SEALDROP_TRY(OptStr(j, "receipt", m.receipt, 16 * 1024));
  SEALDROP_TRY(OptStr(j, "release", m.release, 16 * 1024));
  SEALDROP_TRY(OptStr(j, "code", m.code));
  SEALDROP_TRY(OptStr(j, "message", m.message, 1024));
  SEALDROP_TRY(OptStr(j, "package_digest", m.package_digest));
  SEALDROP_TRY(OptStr(j, "token", m.token));
  if (auto it = j.find("remember"); it != j.end()) {
    if (!it->is_boolean()) return Fail(ErrorCode::kMalformed, "\"remember\" is not a boolean");
    m.remember = it->get<bool>();
  }
  if (auto it = j.find("again"); it != j.end()) {
    if (!it->is_boolean()) return Fail(ErrorCode::kMalformed, "\"again\" is not a boolean");
    m.again = it->get<bool>();
  }
  SEALDROP_TRY(OptInt(j, "balance", m.balance));
  SEALDROP_TRY(OptInt(j, "price", m.price));
  SEALDROP_TRY(OptInt(j, "amount", m.amount));
  int64_t size = 0;
  SEALDROP_TRY(OptInt(j, "size", size));
  if (size < 0) return Fail(ErrorCode::kMalformed, "\"size\" is negative");
  m.size = static_cast<uint64_t>(size);
  if (auto it = j.find("charge_required"); it != j.end()) {
    if (!it->is_boolean()) return Fail(ErrorCode::kMalformed, "\"charge_required\" is not a boolean");
    m.charge_required = it->get<bool>();
  }
  if (auto it = j.find("receipts"); it != j.end()) {
    if (!it->is_array() || it->size() > kMaxReceiptsPerReply)
      return Fail(ErrorCode::kMalformed, "\"receipts\" is not a list");
    for (const auto& r : *it) {
      if (!r.is_string() || r.get_ref<const std::string&>().size() > 16 * 1024)
        return Fail(ErrorCode::kMalformed, "\"receipts\" holds a non-string");
      m.receipts.push_back(r.get<std::string>());
    }
  }
  return m;
}

ControlMessage ErrorControl(const Error& e) {
  ControlMessage m;
  m.type = "error";
  m.code = std::string(ErrorCodeName(e.code));
  m.message = TruncateUtf8(e.message, 1000);
  return m;
}

std::optional<size_t> InnerMaxBody(uint8_t type) {
  switch (static_cast<InnerType>(type)) {
    case InnerType::kCapabilities: return kMaxCapabilitiesSize;
    case InnerType::kPackageBegin: return 8;
    case InnerType::kPackageData: return kMaxPackageDataSize;
    case InnerType::kPackageEnd: return 32;
    case InnerType::kReceived: return 32;
    case InnerType::kError: return 4096;
  }
  return std::nullopt;
}

Bytes EncodeCapabilities(const InnerCapabilities& caps) {
  json j = {{"version", caps.version},
            {"package_suites", caps.package_suites},
            {"key_wrap_chain", caps.key_wrap_chain_pem}};
  return ToBytes(j.dump());
}

Result<InnerCapabilities> ParseCapabilities(ByteView body) {
  SEALDROP_ASSIGN(json j, ParseObject(body, kMaxCapabilitiesSize, "the capabilities message"));
  Strict s{j, "capabilities"};
  SEALDROP_TRY(s.Keys({"version", "package_suites", "key_wrap_chain"}));
  InnerCapabilities c;
  SEALDROP_ASSIGN(int64_t version, s.Int("version"));
  if (version != 1) return Fail(ErrorCode::kMalformed, "capabilities version is not supported");
  const json& suites = j.at("package_suites");
  if (!suites.is_array() || suites.empty() || suites.size() > 16)
    return Fail(ErrorCode::kMalformed, "capabilities.package_suites is not a list of suites");
  for (const auto& v : suites) {
    if (!v.is_string() || v.get_ref<const std::string&>().size() > 64)
      return Fail(ErrorCode::kMalformed, "capabilities.package_suites holds a non-string");
    c.package_suites.push_back(v.get<std::string>());
  }
  SEALDROP_ASSIGN(c.key_wrap_chain_pem, s.Str("key_wrap_chain", 48 * 1024));
  return c;
}

std::string EncodeReceiptClaims(const ReceiptClaims& c) {
  json j = {{"receipt_id", c.receipt_id}, {"user", c.user},       {"program_id", c.program_id},
            {"program", c.program},       {"version", c.version}, {"amount", c.amount},
            {"device_serial", c.device_serial}, {"issued_at", c.issued_at}, {"iss", c.issuer}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<ReceiptClaims> ParseReceiptClaims(ByteView bytes) {
  SEALDROP_ASSIGN(json j, ParseObject(bytes, 8192, "the receipt"));
  Strict s{j, "receipt"};
  SEALDROP_TRY(s.Keys({"receipt_id", "user", "program_id", "program", "version", "amount",
                       "device_serial", "issued_at", "iss"}));
  ReceiptClaims c;
  SEALDROP_ASSIGN(c.receipt_id, s.Str("receipt_id"));
  SEALDROP_ASSIGN(c.user, s.Str("user"));
  SEALDROP_ASSIGN(c.program_id, s.Int("program_id"));
  SEALDROP_ASSIGN(c.program, s.Str("program"));
  SEALDROP_ASSIGN(c.version, s.Str("version"));
  SEALDROP_ASSIGN(c.amount, s.Int("amount"));
  SEALDROP_ASSIGN(c.device_serial, s.Str("device_serial"));
  SEALDROP_ASSIGN(c.issued_at, s.Int("issued_at"));
  SEALDROP_ASSIGN(c.issuer, s.Str("iss"));
  return c;
}

std::string EncodeReleaseClaims(const ReleaseClaims& c) {
  json j = {{"package_id", c.package_id},       {"package_digest", c.package_digest},
            {"device_serial", c.device_serial}, {"order_id", c.order_id},
            {"receipt_id", c.receipt_id},       {"session", c.session}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<ReleaseClaims> ParseReleaseClaims(ByteView bytes) {
  SEALDROP_ASSIGN(json j, ParseObject(bytes, 4096, "the release"));
  Strict s{j, "release"};
  SEALDROP_TRY(s.Keys({"package_id", "package_digest", "device_serial", "order_id", "receipt_id", "session"}));
  ReleaseClaims c;
  SEALDROP_ASSIGN(c.package_id, s.Str("package_id"));
  SEALDROP_ASSIGN(c.package_digest, s.Str("package_digest"));
  SEALDROP_ASSIGN(c.device_serial, s.Str("device_serial"));
  SEALDROP_ASSIGN(c.order_id, s.Str("order_id"));
  SEALDROP_ASSIGN(c.receipt_id, s.Str("receipt_id"));
  SEALDROP_ASSIGN(c.session, s.Str("session"));
  return c;
}

std::optional<size_t> TrpMaxBody(uint8_t type) {
  switch (static_cast<TrpType>(type)) {
    case TrpType::kOpenSession:
    case TrpType::kList:
    case TrpType::kInfo:
    case TrpType::kAbort: return 0;
    case TrpType::kInnerIn:
    case TrpType::kInnerOut: return kMaxInnerRelaySize;
    case TrpType::kRelease: return 64 * 1024;
    case TrpType::kRun:
    case TrpType::kOpen: return 256 * 1024;
    case TrpType::kDownloadComplete:
    case TrpType::kPackageEnd:
    case TrpType::kExit: return 4096;
    case TrpType::kResult: return 4 * 1024 * 1024;
    case TrpType::kError: return 4096;
  }
  return std::nullopt;
}

Bytes ErrorJson(const Error& e) {
  json j = {{"code", std::string(ErrorCodeName(e.code))}, {"message", TruncateUtf8(e.message, 1000)}};
  // Messages may carry bytes from outside (a file name, a peer's text):
  // invalid UTF-8 is replaced rather than thrown on.
  return ToBytes(j.dump(-1, ' ', false, json::error_handler_t::replace));
}

Error ParseErrorJson(ByteView body) {
  auto j = ParseObject(body, 4096, "the error message");
  if (!j) return Error{ErrorCode::kMalformed, "the peer sent an unreadable error"};
  std::string code, message;
  (void)OptStr(*j, "code", code);
  (void)OptStr(*j, "message", message, 1024);
  return Error{ErrorCodeFromName(code), message.empty() ? "the peer reported an error" : message};
}

std::string DigestHex(const Digest& d) { return HexEncode(d); }

}  // namespace sealdrop
