#include "ledger/input_checks.h"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

namespace sealdrop {

using json = nlohmann::json;

namespace {

bool IsPrintableAscii(std::string_view s, bool allow_space) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u > 0x7e || u < 0x20 || (u == 0x20 && !allow_space)) return false;
  }
  return true;
}

}  // namespace

bool IsUtf8(std::string_view s) {
  try {
    (void)json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::strict);
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

Status CheckIdentifier(std::string_view what, std::string_view value, size_t max) {
  if (value.empty() || value.size() > max || !IsPrintableAscii(value, false)) {
    return Fail(ErrorCode::kInvalidArgument,
                "the " + std::string(what) + " must be 1 to " + std::to_string(max) +
                    " printable ASCII characters without spaces");
  }
  return Ok();
}

Status CheckDigest(std::string_view what, std::string_view value) {
  bool ok = value.size() == 64;
  for (char c : value) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!ok) {
    return Fail(ErrorCode::kInvalidArgument,
                "the " + std::string(what) + " must be a SHA-256 digest as 64 lowercase hex digits");
  }
  return Ok();
}

Status CheckProgram(const ProgramRecord& p) {
  if (p.name.empty() || p.name.size() > kMaxProgramNameSize ||
      !IsPrintableAscii(p.name, true) || p.name.front() == ' ' || p.name.back() == ' ') {
    return Fail(ErrorCode::kInvalidArgument,
                "the program name must be 1 to 128 printable ASCII characters, not starting or "
                "ending with a space");
  }
  SEALDROP_TRY(CheckIdentifier("program version", p.version, kMaxVersionSize));
  if (p.price < 0) {
    return Fail(ErrorCode::kInvalidArgument, "the price must not be negative");
  }
  if (p.kind != "elf" && p.kind != "data") {
    return Fail(ErrorCode::kInvalidArgument, "the program kind must be \"elf\" or \"data\"");
  }
  if (p.path.empty() || p.path.size() > kMaxPathSize ||
      p.path.find('\0') != std::string::npos || !IsUtf8(p.path)) {
    return Fail(ErrorCode::kInvalidArgument,
                "the program path must be a non-empty UTF-8 path of at most 4096 bytes");
  }
  if (p.size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Fail(ErrorCode::kInvalidArgument, "the program size is too large");
  }
  return CheckDigest("program's sha256", p.sha256);
}

}  // namespace sealdrop
