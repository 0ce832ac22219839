#include "ledger/audit_chain.h"

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "crypto/sha256.h"

namespace sealdrop {
namespace {

Error Broken(int64_t seq, std::string_view what) {
  return Error{ErrorCode::kCryptoFailure,
               "audit log entry " + std::to_string(seq) + " " + std::string(what) +
                   "; the log has been altered since it was written"};
}

}  // namespace

Status ValidateAuditKind(std::string_view kind) {
  bool ok = !kind.empty() && kind.size() <= kMaxAuditKindSize;
  for (char c : kind) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                c == '-');
  }
  if (!ok) {
    return Fail(ErrorCode::kInvalidArgument,
                "audit kind \"" + std::string(kind.substr(0, kMaxAuditKindSize)) +
                    "\" is not 1 to 64 characters of a-z, 0-9, '.', '_' or '-'");
  }
  return Ok();
}

Result<std::string> CanonicalAuditEntry(int64_t seq, int64_t time, std::string_view kind,
                                        std::string_view detail) {
  try {
    nlohmann::json entry = nlohmann::json::array(
        {seq, time, std::string(kind), std::string(detail)});
    // strict: bytes that are not UTF-8 must fail, never be silently replaced,
    // or two different details could share one encoding.
    return entry.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception&) {
    return Fail(ErrorCode::kMalformed,
                "audit entry " + std::to_string(seq) + " is not valid UTF-8");
  }
}

Result<std::string> AuditEntryHash(std::string_view prev_hash, int64_t seq, int64_t time,
                                   std::string_view kind, std::string_view detail) {
  SEALDROP_ASSIGN(std::string canonical, CanonicalAuditEntry(seq, time, kind, detail));
  Sha256 h;
  h.Update(AsBytes(prev_hash));
  h.Update(AsBytes("\n"));
  h.Update(AsBytes(canonical));
  Digest d = h.Final();
  return HexEncode(d);
}

Status AuditChainVerifier::Check(const AuditEntry& entry) {
  if (failed_) {
    return Fail(ErrorCode::kInternal, "audit verification continued after a failure");
  }
  auto fail = [&](int64_t seq, std::string_view what) -> Status {
    failed_ = true;
    return std::unexpected(Broken(seq, what));
  };
  if (entry.seq != next_seq_) {
    // A gap means entries were removed; going backwards cannot happen with
    // seq as the primary key, but is reported rather than assumed away.
    return entry.seq > next_seq_ ? fail(next_seq_, "is missing")
                                 : fail(entry.seq, "is out of order");
  }
  if (entry.prev_hash != prev_hash_) return fail(entry.seq, "does not link to the entry before it");
  auto expected = AuditEntryHash(prev_hash_, entry.seq, entry.time, entry.kind, entry.detail);
  if (!expected || *expected != entry.hash) return fail(entry.seq, "does not match its hash");
  prev_hash_ = entry.hash;
  ++next_seq_;
  return Ok();
}

}  // namespace sealdrop
