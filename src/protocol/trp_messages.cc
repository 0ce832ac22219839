#include "protocol/trp_messages.h"

#include <limits>
#include <nlohmann/json.hpp>

namespace sealdrop {
namespace {
using nlohmann::json;

// Invalid UTF-8 (a name from outside) is replaced, never thrown on; valid
// text encodes exactly as json::dump() always has.
Bytes Dump(const json& j) { return ToBytes(j.dump(-1, ' ', false, json::error_handler_t::replace)); }

// The body of `frame` as a JSON object, after checking the frame's type and
// the type's limit.
Result<json> Body(FrameView frame, TrpType type, std::string_view what) {
  if (frame.type != static_cast<uint8_t>(type))
    return Fail(ErrorCode::kMalformed, std::string(what) + " came in a frame of type " + std::to_string(frame.type));
  if (frame.body.size() > TrpMaxBody(frame.type).value_or(0))
    return Fail(ErrorCode::kTooLarge, std::string(what) + " is too large");
  json j = json::parse(frame.body.begin(), frame.body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Fail(ErrorCode::kMalformed, std::string(what) + " is not a JSON object");
  return j;
}

// Typed members of one message; `what` names the message in errors.
struct Members {
  const json& j;
  std::string what;

  Error Bad(const char* key, std::string_view problem) const {
    return Error{ErrorCode::kMalformed, what + ": \"" + key + "\" " + std::string(problem)};
  }
  const json* Find(const char* key) const {
    auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
  }
  Result<std::string> Str(const char* key, size_t max = kMaxFieldSize) const {
    const json* v = Find(key);
    if (v == nullptr) return std::unexpected(Bad(key, "is missing"));
    if (!v->is_string()) return std::unexpected(Bad(key, "is not a string"));
    if (v->get_ref<const std::string&>().size() > max) return std::unexpected(Bad(key, "is too long"));
    return v->get<std::string>();
  }
  Result<uint64_t> U64(const char* key) const {
    const json* v = Find(key);
    if (v == nullptr) return std::unexpected(Bad(key, "is missing"));
    if (!v->is_number_unsigned()) return std::unexpected(Bad(key, "is not a non-negative integer"));
    return v->get<uint64_t>();
  }
  Result<int64_t> I64(const char* key) const {
    const json* v = Find(key);
    if (v == nullptr) return std::unexpected(Bad(key, "is missing"));
    if (!v->is_number_integer() || (v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX))
      return std::unexpected(Bad(key, "is not an integer"));
    return v->get<int64_t>();
  }
  Result<int> Int(const char* key) const {
    SEALDROP_ASSIGN(int64_t v, I64(key));
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
      return std::unexpected(Bad(key, "is out of range"));
    return static_cast<int>(v);
  }
  Result<bool> Bool(const char* key) const {
    const json* v = Find(key);
    if (v == nullptr) return std::unexpected(Bad(key, "is missing"));
    if (!v->is_boolean()) return std::unexpected(Bad(key, "is not a boolean"));
    return v->get<bool>();
  }
  // Optional: absent is an empty string.
  Result<std::string> OptStr(const char* key) const {
    if (Find(key) == nullptr) return std::string();
    return Str(key, std::numeric_limits<size_t>::max());  // bounded by the frame
  }
  // Optional: absent is an empty list.
  Result<std::vector<std::string>> OptStrList(const char* key) const {
    std::vector<std::string> out;
    const json* v = Find(key);
    if (v == nullptr) return out;
    if (!v->is_array()) return std::unexpected(Bad(key, "is not a list"));
    for (const json& s : *v) {
      if (!s.is_string()) return std::unexpected(Bad(key, "holds a non-string"));
      out.push_back(s.get<std::string>());
    }
    return out;
  }
};

json RunMembers(const TrpRun& m) { return {{"args", m.args}, {"cwd", m.cwd}, {"env", m.env}}; }

Result<TrpRun> ParseRunMembers(const Members& s) {
  TrpRun m;
  SEALDROP_ASSIGN(m.args, s.OptStrList("args"));
  SEALDROP_ASSIGN(m.cwd, s.OptStr("cwd"));
  SEALDROP_ASSIGN(m.env, s.OptStrList("env"));
  return m;
}
}  // namespace

Bytes Encode(const TrpRelease& m) { return Dump({{"release", m.release}, {"receipt", m.receipt}}); }

Bytes Encode(const TrpRun& m) { return Dump(RunMembers(m)); }

Bytes Encode(const TrpOpen& m) {
  json j = RunMembers(m.program);
  j["with"] = m.with;
  return Dump(j);
}

Bytes Encode(const TrpDownloadComplete& m) {
  return Dump({{"package_digest", m.package_digest},
               {"size", m.size},
               {"package_id", m.package_id},
               {"name", m.name},
               {"version", m.version}});
}

Bytes Encode(const TrpPackageEnd& m) {
  return Dump({{"package_id", m.package_id}, {"name", m.name},  {"version", m.version},
               {"kind", m.kind},             {"size", m.size},  {"package_digest", m.package_digest}});
}

Bytes Encode(const TrpLicenceList& m) {
  json arr = json::array();
  for (const auto& l : m.licences)
    arr.push_back({{"package_id", l.package_id}, {"name", l.name}, {"version", l.version},
                   {"kind", l.kind}, {"receipt_id", l.receipt_id}, {"size", l.size},
                   {"released_at", l.released_at}});
  return Dump({{"licences", arr}});
}

Bytes Encode(const TrpInfo& m) {
  return Dump({{"serial", m.serial},
               {"backend", m.backend},
               {"identity_key_id", m.identity_key_id},
               {"keywrap_key_id", m.keywrap_key_id},
               {"vendor_roots", m.vendor_roots}});
}

Bytes Encode(const TrpExit& m) {
  return Dump(m.signal != 0 ? json{{"signal", m.signal}} : json{{"exit_code", m.exit_code}});
}

Result<TrpRelease> ParseTrpRelease(FrameView frame) {
  SEALDROP_ASSIGN(json j, Body(frame, TrpRelease::kType, "the release message"));
  Members s{j, "the release message"};
  TrpRelease m;
  SEALDROP_ASSIGN(m.release, s.Str("release", kMaxTrpJwsSize));
  SEALDROP_ASSIGN(m.receipt, s.Str("receipt", kMaxTrpJwsSize));
  return m;
}

Result<TrpRun> ParseTrpRun(FrameView frame) {
  SEALDROP_ASSIGN(json j, Body(frame, TrpRun::kType, "the run message"));
  return ParseRunMembers(Members{j, "the run message"});
}

Result<TrpOpen> ParseTrpOpen(FrameView frame) {
  SEALDROP_ASSIGN(json j, Body(frame, TrpOpen::kType, "the open message"));
  Members s{j, "the open message"};
  TrpOpen m;
  SEALDROP_ASSIGN(m.with, s.Bool("with"));
  SEALDROP_ASSIGN(m.program, ParseRunMembers(s));
  return m;
}

Result<TrpDownloadComplete> ParseTrpDownloadComplete(FrameView frame) {
  SEALDROP_ASSIGN(json j, Body(frame, TrpDownloadComplete::kType, "the download report"));
  Members s{j, "the download report"};
  TrpDownloadComplete m;
  SEALDROP_ASSIGN(m.package_digest, s.Str("package_digest"));
  SEALDROP_ASSIGN(m.size, s.U64("size"));
  SEALDROP_ASSIGN(m.package_id, s.Str("package_id"));
  SEALDROP_ASSIGN(m.name, s.Str("name"));
  SEALDROP_ASSIGN(m.version, s.Str("version"));
  return m;
}

Result<TrpPackageEnd> ParseTrpPackageEnd(FrameView frame) {
  SEALDROP_ASSIGN(json j, Body(frame, TrpPackageEnd::kType, "the package end"));
  Members s{j, "the package end"};
  TrpPackageEnd m;
  SEALDROP_ASSIGN(m.package_id, s.Str("package_id"));
  SEALDROP_ASSIGN(m.name, s.Str("name"));
  SEALDROP_ASSIGN(m.version, s.Str("version"));
  SEALDROP_ASSIGN(m.kind, s.Str("kind"));
  SEALDROP_ASSIGN(m.size, s.U64("size"));
  SEALDROP_ASSIGN(m.package_digest, s.Str("package_digest"));
  return m;
}

Result<TrpLicenceList> ParseTrpLicenceList(FrameView frame) {
  SEALDROP_ASSIGN(json j, Body(frame, TrpLicenceList::kType, "the list of licences"));
  auto it = j.find("licences");
  if (it == j.end() || !it->is_array())
    return Fail(ErrorCode::kMalformed, "the list of licences: \"licences\" is not a list");
  TrpLicenceList out;
  for (const json& e : *it) {
    if (!e.is_object()) return Fail(ErrorCode::kMalformed, "the list of licences holds a non-object");
    Members s{e, "a licence in the list"};
    TrpLicenceEntry l;
    SEALDROP_ASSIGN(l.package_id, s.Str("package_id"));
    SEALDROP_ASSIGN(l.name, s.Str("name"));
    SEALDROP_ASSIGN(l.version, s.Str("version"));
    SEALDROP_ASSIGN(l.kind, s.Str("kind"));
    SEALDROP_ASSIGN(l.receipt_id, s.Str("receipt_id"));
    SEALDROP_ASSIGN(l.size, s.U64("size"));
    SEALDROP_ASSIGN(l.released_at, s.I64("released_at"));
    out.licences.push_back(std::move(l));
  }
  return out;
}

Result<TrpInfo> ParseTrpInfo(FrameView frame) {
  SEALDROP_ASSIGN(json j, Body(frame, TrpInfo::kType, "the processor's info"));
  Members s{j, "the processor's info"};
  TrpInfo m;
  SEALDROP_ASSIGN(m.serial, s.Str("serial"));
  SEALDROP_ASSIGN(m.backend, s.Str("backend"));
  SEALDROP_ASSIGN(m.identity_key_id, s.Str("identity_key_id"));
  SEALDROP_ASSIGN(m.keywrap_key_id, s.Str("keywrap_key_id"));
  SEALDROP_ASSIGN(m.vendor_roots, s.U64("vendor_roots"));
  return m;
}

Result<TrpExit> ParseTrpExit(FrameView frame) {
  SEALDROP_ASSIGN(json j, Body(frame, TrpExit::kType, "the exit status"));
  Members s{j, "the exit status"};
  TrpExit m;
  if (s.Find("signal") != nullptr) {
    SEALDROP_ASSIGN(m.signal, s.Int("signal"));
    if (m.signal <= 0) return Fail(ErrorCode::kMalformed, "the exit status: \"signal\" is not a signal number");
    return m;
  }
  SEALDROP_ASSIGN(m.exit_code, s.Int("exit_code"));
  return m;
}

}  // namespace sealdrop
