#include "base/error.h"

#include <array>
#include <utility>

namespace sealdrop {
namespace {
constexpr std::array<std::pair<ErrorCode, std::string_view>, 14> kNames = {{
    {ErrorCode::kInvalidArgument, "invalid_argument"},
    {ErrorCode::kMalformed, "malformed"},
    {ErrorCode::kTooLarge, "too_large"},
    {ErrorCode::kCryptoFailure, "crypto_failure"},
    {ErrorCode::kUntrustedPeer, "untrusted_peer"},
    {ErrorCode::kAuthFailed, "auth_failed"},
    {ErrorCode::kNotFound, "not_found"},
    {ErrorCode::kInsufficientFunds, "insufficient_funds"},
    {ErrorCode::kWrongState, "wrong_state"},
    {ErrorCode::kRefused, "refused"},
    {ErrorCode::kIo, "io"},
    {ErrorCode::kInternal, "internal"},
    {ErrorCode::kUnavailable, "unavailable"},
    {ErrorCode::kAlreadyOwned, "already_owned"},
}};
}  // namespace

std::string_view ErrorCodeName(ErrorCode code) {
  for (const auto& [c, n] : kNames)
    if (c == code) return n;
  return "internal";
}

ErrorCode ErrorCodeFromName(std::string_view name) {
  for (const auto& [c, n] : kNames)
    if (n == name) return c;
  return ErrorCode::kInternal;
}

}  // namespace sealdrop
