// Errors as values.
//
// Every fallible function returns Result<T> (std::expected<T, Error>). An
// Error carries a stable ErrorCode (safe to show to a peer, used in tests) and
// a message: one sentence for the local user or log that says what went wrong
// and, where possible, what to do. The server masks the messages of kIo and
// kInternal before they reach a host (protocol/server_session.cc).
//
// Thread safety: value types, no shared state.
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace sealdrop {

enum class ErrorCode {
  kInvalidArgument,    // bad input from the local user (flag, file, name)
  kMalformed,          // untrusted bytes failed to parse
  kTooLarge,           // a documented size limit was exceeded
  kCryptoFailure,      // signature, tag or key check failed (no detail)
  kUntrustedPeer,      // certificate chain, profile, validity or revocation
  kAuthFailed,         // wrong user or password
  kNotFound,           // no such program, receipt, user, ...
  kInsufficientFunds,  // balance lower than the price
  kWrongState,         // message not allowed in the protocol's current state
  kRefused,            // policy said no (device limit, revoked, licence)
  kIo,                 // file, socket or database I/O failed
  kInternal,           // a bug or an OpenSSL failure that should not happen
  kUnavailable,        // peer or service not reachable, try again
  kAlreadyOwned,       // the user already holds a receipt for this program version
};

std::string_view ErrorCodeName(ErrorCode code);
// Parses a name produced by ErrorCodeName; unknown names map to kInternal.
ErrorCode ErrorCodeFromName(std::string_view name);

struct Error {
  ErrorCode code;
  std::string message;
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> Fail(ErrorCode code, std::string message) {
  return std::unexpected(Error{code, std::move(message)});
}

inline Status Ok() { return {}; }

// Prefixes the error's message with context ("reading FILE: ...").
inline Error WithContext(Error e, std::string_view context) {
  e.message = std::string(context) + ": " + e.message;
  return e;
}

}  // namespace sealdrop

// Propagates an error from an expression returning Result<T>/Status.
#define SEALDROP_TRY(expr)                                  \
  do {                                                      \
    auto sealdrop_try_result_ = (expr);                     \
    if (!sealdrop_try_result_)                              \
      return std::unexpected(sealdrop_try_result_.error()); \
  } while (0)

#define SEALDROP_CONCAT_INNER_(a, b) a##b
#define SEALDROP_CONCAT_(a, b) SEALDROP_CONCAT_INNER_(a, b)
// SEALDROP_ASSIGN(auto x, expr): binds the value or returns the error.
#define SEALDROP_ASSIGN(lhs, expr)                                              \
  auto SEALDROP_CONCAT_(sealdrop_assign_, __LINE__) = (expr);                   \
  if (!SEALDROP_CONCAT_(sealdrop_assign_, __LINE__))                            \
    return std::unexpected(SEALDROP_CONCAT_(sealdrop_assign_, __LINE__).error()); \
  lhs = std::move(*SEALDROP_CONCAT_(sealdrop_assign_, __LINE__))
