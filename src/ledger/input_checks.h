// Validation of what callers hand the ledger, shared by its implementations
// so that every backend accepts and refuses the same input.
//
// Identifiers (user names, versions, device serials, idempotency keys) are
// printable ASCII without spaces: they end up in JSON, logs, receipts and
// error messages, where invisible or look-alike characters would only cause
// trouble. Every failure is kInvalidArgument with a sentence naming the rule.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <string_view>

#include "base/error.h"
#include "ledger/ledger.h"

namespace sealdrop {

inline constexpr size_t kMaxUserSize = 64;
inline constexpr size_t kMaxProgramNameSize = 128;
inline constexpr size_t kMaxVersionSize = 64;
inline constexpr size_t kMaxSerialSize = 256;
inline constexpr size_t kMaxIdempotencyKeySize = 128;
inline constexpr size_t kMaxReasonSize = 1024;
inline constexpr size_t kMaxPathSize = 4096;

bool IsUtf8(std::string_view s);

// `what` names the value in the message ("user name").
Status CheckIdentifier(std::string_view what, std::string_view value, size_t max);
// A hex SHA-256 digest: exactly 64 lowercase hex digits.
Status CheckDigest(std::string_view what, std::string_view value);
// Every field of a program about to be added; id and added_at are not checked.
Status CheckProgram(const ProgramRecord& program);

}  // namespace sealdrop
