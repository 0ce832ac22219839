// Password hashing for ledger users: argon2id through libsodium's
// crypto_pwhash_str, with its INTERACTIVE limits (64 MiB, 2 passes), stored
// as the self-describing "$argon2id$..." string so that the limits can be
// raised later without a schema change.
//
// Thread safety: safe from any thread. Each call allocates the memory limit,
// so callers should not hold locks while hashing.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace sealdrop {

// Passwords longer than this are refused rather than hashed; no human types
// more, and the cap bounds the work an unauthenticated request can cause.
inline constexpr size_t kMaxPasswordSize = 1024;

Result<std::string> HashPassword(std::string_view password);

// true only if `password` matches `stored_hash`. Malformed hashes never match.
bool VerifyPassword(std::string_view stored_hash, std::string_view password);

// Initialises libsodium and computes the dummy hash now, so the first
// unknown-user check does not take visibly longer than later ones. Call once
// at startup; calling again is cheap.
void PreparePasswordHashing();

// Spends the same time as a VerifyPassword against a real hash, for a user
// that does not exist, so response time does not reveal which names exist.
void VerifyPasswordAgainstDummy(std::string_view password);

}  // namespace sealdrop
