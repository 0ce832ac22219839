// The audit log's hash chain, format version 1. Shared by every Ledger
// implementation so that a log copied between them still verifies.
//
// An entry is (seq, time, kind, detail): seq counts from 1 without gaps, time
// is unix seconds, kind is a short name of [a-z0-9._-], and detail is JSON
// text. Its canonical encoding is the JSON array
//
//     [seq,time,"kind","detail"]
//
// exactly as nlohmann::json::dump() writes it: no whitespace, integers in
// decimal, strings with JSON escapes and non-ASCII left as UTF-8. detail is
// embedded as one string, byte for byte, never re-parsed, so the hash covers
// the stored text and not some normalisation of it. Then
//
//     hash = lowercase hex SHA-256(prev_hash || "\n" || canonical)
//
// where prev_hash is the previous entry's hash as 64 hex characters, and 64
// '0' characters for seq 1.
//
// What the chain detects: an entry changed, inserted or removed anywhere
// before the last one. What it cannot detect alone: the newest entries cut
// off, or the whole chain recomputed by someone who can write the database.
// Those need checkpoints (the latest seq and hash) signed and kept elsewhere.
//
// Thread safety: free functions are pure; an AuditChainVerifier is used by
// one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"
#include "ledger/ledger.h"

namespace sealdrop {

inline constexpr std::string_view kAuditGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";
inline constexpr size_t kMaxAuditKindSize = 64;
inline constexpr size_t kMaxAuditDetailSize = 64 * 1024;

// kInvalidArgument unless kind is 1..64 characters of [a-z0-9._-].
Status ValidateAuditKind(std::string_view kind);

// kMalformed if kind or detail is not valid UTF-8.
Result<std::string> CanonicalAuditEntry(int64_t seq, int64_t time, std::string_view kind,
                                        std::string_view detail);

Result<std::string> AuditEntryHash(std::string_view prev_hash, int64_t seq, int64_t time,
                                   std::string_view kind, std::string_view detail);

// Checks entries one by one in seq order, so a long log never has to sit in
// memory. Every failure is kCryptoFailure naming the first bad seq.
class AuditChainVerifier {
 public:
  Status Check(const AuditEntry& entry);
  // The hash the next entry must carry as prev_hash.
  const std::string& head() const { return prev_hash_; }
  int64_t entries_checked() const { return next_seq_ - 1; }

 private:
  int64_t next_seq_ = 1;
  std::string prev_hash_{kAuditGenesisHash};
  bool failed_ = false;
};

}  // namespace sealdrop
