// The server's ledger: users, programs, devices, orders, receipts,
// deliveries and a hash-chained audit log.
//
// One interface, so that a PostgreSQL implementation can stand beside the
// SQLite one (sqlite_ledger.h). Every method is one transaction: it either
// commits completely or changes nothing. Money is an integer count of the
// smallest currency unit.
//
// Exactly-once charging: Charge() is keyed by (user, idempotency_key). The
// first call debits, writes the receipt, the delivery and an audit entry in
// one transaction; a repeated call with the same key returns the stored
// receipt and debits nothing, whatever else it carries.
//
// One licence per program version: Charge() refuses with kAlreadyOwned when
// the user already holds a receipt for the program version, unless the
// request says `again` (a deliberate second licence). A newer version is
// another program record and so a new purchase.
//
// Audit chain: every entry stores SHA-256(prev_hash || entry_bytes) where
// entry_bytes is a canonical encoding of (seq, time, kind, detail); VerifyAudit
// recomputes the whole chain.
//
// Thread safety: an implementation serialises its own access; one Ledger may
// be used from several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace sealdrop {

struct ProgramRecord {
  int64_t id = 0;
  std::string name;
  std::string version;
  int64_t price = 0;
  std::string kind;       // "elf" or "data"
  std::string path;       // stored plaintext file on the server
  uint64_t size = 0;
  std::string sha256;     // hex digest of the plaintext
  int64_t added_at = 0;   // unix seconds
  bool may_export = false;  // data only: the licence lets 'sealdrop open' export the plaintext
};

struct ReceiptRecord {
  std::string receipt_id;
  std::string user;
  int64_t program_id = 0;
  std::string program_name;
  std::string program_version;
  int64_t amount = 0;
  std::string device_serial;  // the device of the first delivery
  std::string jws;            // the signed receipt as issued
  int64_t issued_at = 0;
};

struct ChargeRequest {
  std::string user;
  std::string idempotency_key;
  int64_t program_id = 0;
  std::string device_serial;
  std::string package_digest;  // hex SHA-256 of the delivered package
  // The user asked for a second licence of a version they already own.
  bool again = false;
  // Builds the signed receipt JWS for a new receipt id, issue time and the
  // amount this transaction debits (read inside it, so a price changed after
  // the order is the price both charged and signed); called inside the
  // transaction, only when a new receipt is created. An error from it rolls
  // the whole charge back.
  // WARNING: it runs while the ledger is locked; it must not call the ledger.
  // It may run on another thread than the caller's (one committing several
  // callers' charges together) while the caller waits, and every charge of
  // that transaction waits for it: keep it quick.
  std::function<Result<std::string>(const std::string& receipt_id, int64_t issued_at,
                                    int64_t amount)>
      sign_receipt;
};

struct ChargeOutcome {
  ReceiptRecord receipt;
  bool replayed = false;  // true if the idempotency key had been charged before
  int64_t balance_after = 0;
};

struct DeliveryRequest {
  std::string user;
  std::string receipt_id;
  std::string device_serial;
  std::string package_digest;
  int device_limit = 3;  // distinct devices one receipt may be delivered to
};

// A processor as the ledger knows it: seen through its deliveries, or
// revoked (possibly before it was ever seen).
struct DeviceRecord {
  std::string serial;
  int64_t receipts = 0;    // distinct receipts delivered to it
  int64_t deliveries = 0;  // purchases and re-downloads
  int64_t first_seen = 0;  // unix seconds of the first delivery; 0 if never seen
  int64_t last_seen = 0;
  bool revoked = false;
  int64_t revoked_at = 0;  // unix seconds
  std::string revoke_reason;
};

struct RevokeOutcome {
  bool already_revoked = false;  // an earlier revocation stands (its time and reason)
  DeviceRecord device;           // as it stands after the call
};

struct AuditEntry {
  int64_t seq = 0;
  int64_t time = 0;
  std::string kind;
  std::string detail;  // JSON text
  std::string prev_hash;
  std::string hash;
};

class Ledger {
 public:
  virtual ~Ledger() = default;

  // Users. Passwords are hashed with argon2id (libsodium, moderate limits).
  virtual Status AddUser(const std::string& user, const std::string& password,
                         int64_t credit) = 0;
  // kAuthFailed for unknown user or wrong password (same message for both).
  virtual Status Authenticate(const std::string& user, const std::string& password) = 0;
  // Login tokens, so a client need not keep the password: IssueToken returns
  // a fresh random token valid for ttl_seconds (only its hash is stored);
  // AuthenticateToken fails with the same kAuthFailed as Authenticate for an
  // unknown, wrong or expired token.
  virtual Result<std::string> IssueToken(const std::string& user, int64_t ttl_seconds) = 0;
  virtual Status AuthenticateToken(const std::string& user, const std::string& token) = 0;
  virtual Result<int64_t> Balance(const std::string& user) = 0;
  virtual Status AddCredit(const std::string& user, int64_t amount) = 0;

  // Programs.
  virtual Result<ProgramRecord> AddProgram(const ProgramRecord& program) = 0;
  virtual Result<std::vector<ProgramRecord>> Catalog() = 0;
  // Newest version if version is empty.
  virtual Result<ProgramRecord> FindProgram(const std::string& name,
                                            const std::string& version) = 0;
  virtual Result<ProgramRecord> ProgramById(int64_t id) = 0;

  // Devices.
  // Revoking a serial never seen is allowed (a manufacturer may report a
  // clone before it connects); revoking twice keeps the first time and reason.
  virtual Result<RevokeOutcome> RevokeDevice(const std::string& serial,
                                             const std::string& reason) = 0;
  virtual Result<bool> IsDeviceRevoked(const std::string& serial) = 0;
  // Every serial seen in a delivery or revoked, ordered by serial.
  virtual Result<std::vector<DeviceRecord>> Devices() = 0;

  // Money and deliveries.
  virtual Result<ChargeOutcome> Charge(const ChargeRequest& request) = 0;
  // Re-download: checks the receipt belongs to the user and the device limit,
  // records the delivery and an audit entry. Charges nothing.
  virtual Status RecordRedelivery(const DeliveryRequest& request) = 0;
  // Checks what RecordRedelivery would check (receipt of this user, device
  // not revoked, device limit) and writes nothing: lets an order be refused
  // before the package is sealed. RecordRedelivery checks again.
  virtual Status CheckRedelivery(const DeliveryRequest& request) = 0;
  virtual Result<ReceiptRecord> FindReceipt(const std::string& receipt_id) = 0;
  // The user's receipt charged under this idempotency key, if any.
  virtual Result<std::optional<ReceiptRecord>> FindReceiptByKey(
      const std::string& user, const std::string& idempotency_key) = 0;
  // The user's first receipt for this program version, if any.
  virtual Result<std::optional<ReceiptRecord>> FindOwnedReceipt(const std::string& user,
                                                                int64_t program_id) = 0;
  virtual Result<std::vector<ReceiptRecord>> Receipts(const std::string& user) = 0;

  // Audit.
  virtual Status AppendAudit(const std::string& kind, const std::string& detail_json) = 0;
  virtual Result<std::vector<AuditEntry>> AuditLog() = 0;
  // Recomputes the chain; kCryptoFailure naming the first bad seq.
  virtual Status VerifyAudit() = 0;
};

}  // namespace sealdrop
