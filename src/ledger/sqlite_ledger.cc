#include "ledger/sqlite_ledger.h"

#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>

#include "crypto/random.h"
#include "crypto/sha256.h"
#include "ledger/audit_chain.h"
#include "ledger/input_checks.h"
#include "ledger/password.h"
#include "ledger/read_pool.h"
#include "ledger/sqlite_db.h"
#include "ledger/sqlite_schema.h"
#include "ledger/version_order.h"
#include "ledger/write_batcher.h"

namespace sealdrop {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using sqlite::Db;
using sqlite::Statement;
using sqlite::Transaction;

int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string DumpDetail(const json& detail) {
  return detail.dump(-1, ' ', false, json::error_handler_t::strict);
}

Error AuthFailed() {
  return Error{ErrorCode::kAuthFailed, "unknown user or wrong password; check both and try again"};
}

Error NoSuchUser(std::string_view user) {
  return Error{ErrorCode::kNotFound,
               "there is no user named \"" + std::string(user) + "\"; check the name or add the user"};
}

// One message for "no such receipt" and "someone else's receipt", so that a
// caller cannot learn which receipt ids exist.
Error NoSuchReceiptForUser(std::string_view receipt_id) {
  return Error{ErrorCode::kNotFound,
               "you have no receipt \"" + std::string(receipt_id) +
                   "\"; list your receipts to find the right one"};
}

// Column order shared by every program query and ReadProgram().
constexpr std::string_view kProgramColumns =
    "id, name, version, price, kind, path, size, sha256, added_at, may_export";

ProgramRecord ReadProgram(const Statement& s) {
  ProgramRecord p;
  p.id = s.ColumnInt(0);
  p.name = s.ColumnText(1);
  p.version = s.ColumnText(2);
  p.price = s.ColumnInt(3);
  p.kind = s.ColumnText(4);
  p.path = s.ColumnText(5);
  p.size = static_cast<uint64_t>(s.ColumnInt(6));
  p.sha256 = s.ColumnText(7);
  p.added_at = s.ColumnInt(8);
  p.may_export = s.ColumnInt(9) != 0;
  return p;
}

constexpr std::string_view kReceiptSelect =
    "SELECT r.receipt_id, r.user, r.program_id, p.name, p.version, r.amount, "
    "r.device_serial, r.jws, r.issued_at FROM receipts r JOIN programs p ON p.id = r.program_id ";

ReceiptRecord ReadReceipt(const Statement& s) {
  ReceiptRecord r;
  r.receipt_id = s.ColumnText(0);
  r.user = s.ColumnText(1);
  r.program_id = s.ColumnInt(2);
  r.program_name = s.ColumnText(3);
  r.program_version = s.ColumnText(4);
  r.amount = s.ColumnInt(5);
  r.device_serial = s.ColumnText(6);
  r.jws = s.ColumnText(7);
  r.issued_at = s.ColumnInt(8);
  return r;
}

// Queries used inside a caller's transaction.

Result<std::optional<int64_t>> LoadBalance(Db& db, std::string_view user) {
  SEALDROP_ASSIGN(Statement s, db.Prepare("SELECT balance FROM users WHERE name = ?"));
  s.Bind(1, user);
  SEALDROP_ASSIGN(bool row, s.Step());
  if (!row) return std::optional<int64_t>();
  return std::optional<int64_t>(s.ColumnInt(0));
}

Result<std::optional<ProgramRecord>> LoadProgram(Db& db, int64_t id) {
  SEALDROP_ASSIGN(Statement s, db.Prepare("SELECT " + std::string(kProgramColumns) +
                                          " FROM programs WHERE id = ?"));
  s.Bind(1, id);
  SEALDROP_ASSIGN(bool row, s.Step());
  if (!row) return std::optional<ProgramRecord>();
  return std::optional<ProgramRecord>(ReadProgram(s));
}

Result<std::optional<ReceiptRecord>> LoadReceipt(Db& db, std::string_view receipt_id) {
  SEALDROP_ASSIGN(Statement s, db.Prepare(std::string(kReceiptSelect) + "WHERE r.receipt_id = ?"));
  s.Bind(1, receipt_id);
  SEALDROP_ASSIGN(bool row, s.Step());
  if (!row) return std::optional<ReceiptRecord>();
  return std::optional<ReceiptRecord>(ReadReceipt(s));
}

Result<bool> LoadRevoked(Db& db, std::string_view serial) {
  SEALDROP_ASSIGN(Statement s, db.Prepare("SELECT 1 FROM revoked_devices WHERE serial = ?"));
  s.Bind(1, serial);
  return s.Step();
}

Error RevokedDevice(std::string_view serial) {
  return Error{ErrorCode::kRefused, "device \"" + std::string(serial) +
                                        "\" has been revoked and cannot receive programs; "
                                        "contact the vendor"};
}

Error AlreadyOwned(const ProgramRecord& program) {
  return Error{ErrorCode::kAlreadyOwned,
               "you already own " + program.name + " " + program.version +
                   "; download it again for free with 'sealdrop get " + program.name +
                   "', or buy a second licence with 'sealdrop buy --again " + program.name + "'"};
}

Result<std::optional<ReceiptRecord>> LoadOwnedReceipt(Db& db, std::string_view user,
                                                      int64_t program_id) {
  SEALDROP_ASSIGN(Statement s, db.Prepare(std::string(kReceiptSelect) +
                                          "WHERE r.user = ? AND r.program_id = ? "
                                          "ORDER BY r.issued_at, r.rowid LIMIT 1"));
  s.Bind(1, user).Bind(2, program_id);
  SEALDROP_ASSIGN(bool row, s.Step());
  if (!row) return std::optional<ReceiptRecord>();
  return std::optional<ReceiptRecord>(ReadReceipt(s));
}

// Every serial seen in a delivery or revoked; with `only`, that one serial.
Result<std::vector<DeviceRecord>> LoadDevices(Db& db, std::optional<std::string_view> only) {
  std::string sql =
      "WITH d AS (SELECT device_serial AS serial, COUNT(DISTINCT receipt_id) AS receipts, "
      "COUNT(*) AS deliveries, MIN(at) AS first_seen, MAX(at) AS last_seen "
      "FROM deliveries GROUP BY device_serial), "
      "s AS (SELECT serial FROM d UNION SELECT serial FROM revoked_devices) "
      "SELECT s.serial, COALESCE(d.receipts, 0), COALESCE(d.deliveries, 0), "
      "COALESCE(d.first_seen, 0), COALESCE(d.last_seen, 0), r.serial IS NOT NULL, "
      "COALESCE(r.at, 0), COALESCE(r.reason, '') FROM s "
      "LEFT JOIN d ON d.serial = s.serial LEFT JOIN revoked_devices r ON r.serial = s.serial ";
  sql += only ? "WHERE s.serial = ?" : "ORDER BY s.serial";
  SEALDROP_ASSIGN(Statement s, db.Prepare(sql));
  if (only) s.Bind(1, *only);
  std::vector<DeviceRecord> out;
  while (true) {
    SEALDROP_ASSIGN(bool row, s.Step());
    if (!row) break;
    DeviceRecord d;
    d.serial = s.ColumnText(0);
    d.receipts = s.ColumnInt(1);
    d.deliveries = s.ColumnInt(2);
    d.first_seen = s.ColumnInt(3);
    d.last_seen = s.ColumnInt(4);
    d.revoked = s.ColumnInt(5) != 0;
    d.revoked_at = s.ColumnInt(6);
    d.revoke_reason = s.ColumnText(7);
    out.push_back(std::move(d));
  }
  return out;
}

// The checks a re-download passes before it is recorded. Returns whether the
// device already had a delivery of this receipt.
Result<bool> CheckRedeliveryIn(Db& db, const DeliveryRequest& request) {
  SEALDROP_TRY(CheckIdentifier("device serial", request.device_serial, kMaxSerialSize));
  if (request.device_limit < 1) {
    return Fail(ErrorCode::kInvalidArgument, "the device limit must be at least 1");
  }
  SEALDROP_ASSIGN(auto receipt, LoadReceipt(db, request.receipt_id));
  if (!receipt || receipt->user != request.user) {
    return std::unexpected(NoSuchReceiptForUser(request.receipt_id));
  }
  SEALDROP_ASSIGN(bool revoked, LoadRevoked(db, request.device_serial));
  if (revoked) return std::unexpected(RevokedDevice(request.device_serial));
  int64_t devices = 0;
  bool known_device = false;
  {
    SEALDROP_ASSIGN(Statement s,
                    db.Prepare("SELECT COUNT(DISTINCT device_serial), "
                               "COALESCE(MAX(device_serial = ?), 0) "
                               "FROM deliveries WHERE receipt_id = ?"));
    s.Bind(1, request.device_serial).Bind(2, request.receipt_id);
    SEALDROP_ASSIGN(bool row, s.Step());
    if (row) {
      devices = s.ColumnInt(0);
      known_device = s.ColumnInt(1) != 0;
    }
  }
  if (!known_device && devices >= request.device_limit) {
    return Fail(ErrorCode::kRefused,
                "this receipt has reached its limit of " + std::to_string(request.device_limit) +
                    " devices; download again on a device it was already delivered to");
  }
  return known_device;
}

Status InsertDelivery(Db& db, std::string_view receipt_id, std::string_view serial,
                      std::string_view digest, int64_t at, bool charged) {
  SEALDROP_ASSIGN(Statement s, db.Prepare(
                                   "INSERT INTO deliveries(receipt_id, device_serial, "
                                   "package_digest, at, charged) VALUES(?, ?, ?, ?, ?)"));
  s.Bind(1, receipt_id).Bind(2, serial).Bind(3, digest).Bind(4, at).Bind(5, int64_t{charged});
  return s.Run();
}

// Appends to the chain inside the caller's write transaction, so the entry
// commits or vanishes together with the change it records.
// Inside a batch the previous entry may be another write's, made moments ago
// in the same transaction: the chain follows the batch's order.
Status AppendAuditIn(Db& db, int64_t time, std::string_view kind, std::string_view detail) {
  int64_t last_seq = 0;
  std::string prev_hash(kAuditGenesisHash);
  {
    SEALDROP_ASSIGN(Statement s,
                    db.Prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
    SEALDROP_ASSIGN(bool row, s.Step());
    if (row) {
      last_seq = s.ColumnInt(0);
      prev_hash = s.ColumnText(1);
    }
  }
  int64_t seq = last_seq + 1;
  SEALDROP_ASSIGN(std::string hash, AuditEntryHash(prev_hash, seq, time, kind, detail));
  SEALDROP_ASSIGN(Statement s, db.Prepare("INSERT INTO audit(seq, time, kind, detail, "
                                          "prev_hash, hash) VALUES(?, ?, ?, ?, ?, ?)"));
  s.Bind(1, seq).Bind(2, time).Bind(3, kind).Bind(4, detail).Bind(5, prev_hash).Bind(6, hash);
  return s.Run();
}

// One charge inside the writer's transaction (see Ledger::Charge). Any
// failure returns before the batch commits, and the write's savepoint (or
// the transaction) undoes whatever it changed.
Result<ChargeOutcome> ChargeIn(Db& db, const ChargeRequest& request, int64_t now) {
  // Inside BEGIN IMMEDIATE: another process sharing the file cannot slip in
  // the same key between this lookup and the insert below.
  {
    SEALDROP_ASSIGN(Statement s, db.Prepare(std::string(kReceiptSelect) +
                                            "WHERE r.user = ? AND r.idempotency_key = ?"));
    s.Bind(1, request.user).Bind(2, request.idempotency_key);
    SEALDROP_ASSIGN(bool found, s.Step());
    if (found) {
      ChargeOutcome outcome;
      outcome.receipt = ReadReceipt(s);
      outcome.replayed = true;
      SEALDROP_ASSIGN(auto balance, LoadBalance(db, request.user));
      outcome.balance_after = balance.value_or(0);
      return outcome;
    }
  }
  SEALDROP_ASSIGN(auto balance, LoadBalance(db, request.user));
  if (!balance) return std::unexpected(NoSuchUser(request.user));
  SEALDROP_ASSIGN(auto program, LoadProgram(db, request.program_id));
  if (!program) {
    return Fail(ErrorCode::kNotFound, "there is no program with id " +
                                          std::to_string(request.program_id) +
                                          "; list the catalogue and try again");
  }
  // The session layer checks revocation during the handshake; checking
  // again here closes the window between that check and the debit.
  SEALDROP_ASSIGN(bool revoked, LoadRevoked(db, request.device_serial));
  if (revoked) return std::unexpected(RevokedDevice(request.device_serial));
  if (!request.again) {
    SEALDROP_ASSIGN(auto owned, LoadOwnedReceipt(db, request.user, program->id));
    if (owned) return std::unexpected(AlreadyOwned(*program));
  }
  if (*balance < program->price) {
    return Fail(ErrorCode::kInsufficientFunds,
                "your balance of " + std::to_string(*balance) + " is less than the price " +
                    std::to_string(program->price) + " of " + program->name + " " +
                    program->version + "; add credit and try again");
  }
  int64_t after = *balance - program->price;
  {
    SEALDROP_ASSIGN(Statement s, db.Prepare("UPDATE users SET balance = ? WHERE name = ?"));
    s.Bind(1, after).Bind(2, request.user);
    SEALDROP_TRY(s.Run());
  }
  ReceiptRecord receipt;
  receipt.receipt_id = RandomHexId(16);
  receipt.user = request.user;
  receipt.program_id = program->id;
  receipt.program_name = program->name;
  receipt.program_version = program->version;
  receipt.amount = program->price;
  receipt.device_serial = request.device_serial;
  receipt.issued_at = now;
  Result<std::string> jws = Fail(ErrorCode::kInternal, "the receipt signer threw");
  try {
    jws = request.sign_receipt(receipt.receipt_id, receipt.issued_at, receipt.amount);
  } catch (const std::exception&) {
  }
  if (!jws) return std::unexpected(WithContext(jws.error(), "signing the receipt"));
  if (jws->empty()) return Fail(ErrorCode::kInternal, "the receipt signer returned nothing");
  receipt.jws = std::move(*jws);
  {
    SEALDROP_ASSIGN(Statement s,
                    db.Prepare("INSERT INTO receipts(receipt_id, user, program_id, amount, "
                               "device_serial, jws, issued_at, idempotency_key) "
                               "VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
    s.Bind(1, receipt.receipt_id).Bind(2, receipt.user).Bind(3, receipt.program_id);
    s.Bind(4, receipt.amount).Bind(5, receipt.device_serial).Bind(6, receipt.jws);
    s.Bind(7, receipt.issued_at).Bind(8, request.idempotency_key);
    SEALDROP_TRY(s.Run());
  }
  SEALDROP_TRY(InsertDelivery(db, receipt.receipt_id, request.device_serial,
                              request.package_digest, receipt.issued_at, true));
  SEALDROP_TRY(AppendAuditIn(db, now, "charge",
                             DumpDetail({{"user", receipt.user},
                                         {"receipt_id", receipt.receipt_id},
                                         {"program_id", receipt.program_id},
                                         {"program", receipt.program_name},
                                         {"version", receipt.program_version},
                                         {"amount", receipt.amount},
                                         {"balance_after", after},
                                         {"device_serial", request.device_serial},
                                         {"package_digest", request.package_digest},
                                         {"idempotency_key", request.idempotency_key},
                                         {"again", request.again}})));
  return ChargeOutcome{std::move(receipt), false, after};
}

class SqliteLedger final : public Ledger {
 public:
  SqliteLedger(Db writer, const fs::path& db_path, const SqliteLedgerOptions& options)
      : clock_(options.clock ? options.clock : [] { return std::chrono::system_clock::now(); }),
        writer_(std::move(writer), options.max_batch, options.on_batch),
        readers_([db_path] { return OpenLedgerReader(db_path); }, options.read_connections) {}

  Status AddUser(const std::string& user, const std::string& password,
                 int64_t credit) override {
    return Guarded([&]() -> Status {
      SEALDROP_TRY(CheckIdentifier("user name", user, kMaxUserSize));
      if (credit < 0) {
        return Fail(ErrorCode::kInvalidArgument, "the starting credit must not be negative");
      }
      // Hashed before queueing: argon2id is slow on purpose and must not
      // stall every other write of the batch.
      SEALDROP_ASSIGN(std::string pw_hash, HashPassword(password));
      return WriteStatus([&](Db& db) -> Status {
        SEALDROP_ASSIGN(auto existing, LoadBalance(db, user));
        if (existing) {
          return Fail(ErrorCode::kRefused,
                      "a user named \"" + user + "\" already exists; choose another name");
        }
        int64_t now = Now();
        SEALDROP_ASSIGN(Statement s, db.Prepare("INSERT INTO users(name, pw_hash, balance, "
                                                "created_at) VALUES(?, ?, ?, ?)"));
        s.Bind(1, user).Bind(2, pw_hash).Bind(3, credit).Bind(4, now);
        SEALDROP_TRY(s.Run());
        return AppendAuditIn(db, now, "user.add",
                             DumpDetail({{"user", user}, {"credit", credit}}));
      });
    });
  }

  Status Authenticate(const std::string& user, const std::string& password) override {
    return Guarded([&]() -> Status {
      // The connection is handed back before the hash is checked: argon2id
      // is slow on purpose, and no other call may wait behind it.
      SEALDROP_ASSIGN(std::optional<std::string> pw_hash,
                      Read<std::optional<std::string>>(
                          [&](Db& db) -> Result<std::optional<std::string>> {
                            SEALDROP_ASSIGN(Statement s,
                                            db.Prepare("SELECT pw_hash FROM users WHERE name = ?"));
                            s.Bind(1, user);
                            SEALDROP_ASSIGN(bool row, s.Step());
                            if (!row) return std::optional<std::string>();
                            return std::optional<std::string>(s.ColumnText(0));
                          }));
      // An unknown user still costs one full verification, so timing does
      // not say whether the name exists.
      if (!pw_hash) {
        VerifyPasswordAgainstDummy(password);
        return std::unexpected(AuthFailed());
      }
      if (!VerifyPassword(*pw_hash, password)) return std::unexpected(AuthFailed());
      return Ok();
    });
  }

  Result<std::string> IssueToken(const std::string& user, int64_t ttl_seconds) override {
    return Guarded([&]() -> Result<std::string> {
      if (ttl_seconds <= 0) return Fail(ErrorCode::kInvalidArgument, "a token needs a positive lifetime");
      std::string token = RandomHexId(32);
      SEALDROP_TRY(WriteStatus([&](Db& db) -> Status {
        SEALDROP_ASSIGN(auto balance, LoadBalance(db, user));
        if (!balance) return std::unexpected(NoSuchUser(user));
        int64_t now = Now();
        if (ttl_seconds > std::numeric_limits<int64_t>::max() - now) {
          return Fail(ErrorCode::kInvalidArgument, "the token lifetime is too long");
        }
        {
          // Expired tokens are dropped whenever a new one is issued.
          SEALDROP_ASSIGN(Statement d, db.Prepare("DELETE FROM tokens WHERE expires_at < ?"));
          d.Bind(1, now);
          SEALDROP_TRY(d.Run());
        }
        SEALDROP_ASSIGN(Statement s, db.Prepare("INSERT INTO tokens(token_hash, user, "
                                                "expires_at) VALUES(?, ?, ?)"));
        s.Bind(1, Sha256Hex(AsBytes(token))).Bind(2, user).Bind(3, now + ttl_seconds);
        return s.Run();
      }));
      return token;
    });
  }

  Status AuthenticateToken(const std::string& user, const std::string& token) override {
    return Guarded([&]() -> Status {
      return ReadStatus([&](Db& db) -> Status {
        SEALDROP_ASSIGN(Statement s, db.Prepare("SELECT user, expires_at FROM tokens "
                                                "WHERE token_hash = ?"));
        s.Bind(1, Sha256Hex(AsBytes(token)));
        SEALDROP_ASSIGN(bool row, s.Step());
        // The lookup is by hash, so comparing the user name leaks nothing
        // useful. A token is good up to and including its expiry second.
        if (!row || s.ColumnText(0) != user || s.ColumnInt(1) < Now()) {
          return std::unexpected(AuthFailed());
        }
        return Ok();
      });
    });
  }

  Result<int64_t> Balance(const std::string& user) override {
    return Guarded([&]() -> Result<int64_t> {
      return Read<int64_t>([&](Db& db) -> Result<int64_t> {
        SEALDROP_ASSIGN(auto balance, LoadBalance(db, user));
        if (!balance) return std::unexpected(NoSuchUser(user));
        return *balance;
      });
    });
  }

  Status AddCredit(const std::string& user, int64_t amount) override {
    return Guarded([&]() -> Status {
      if (amount <= 0) {
        return Fail(ErrorCode::kInvalidArgument, "the credit to add must be a positive amount");
      }
      return WriteStatus([&](Db& db) -> Status {
        SEALDROP_ASSIGN(auto balance, LoadBalance(db, user));
        if (!balance) return std::unexpected(NoSuchUser(user));
        if (*balance > std::numeric_limits<int64_t>::max() - amount) {
          return Fail(ErrorCode::kInvalidArgument,
                      "adding " + std::to_string(amount) + " would overflow the balance of \"" +
                          user + "\"");
        }
        int64_t after = *balance + amount;
        SEALDROP_ASSIGN(Statement s, db.Prepare("UPDATE users SET balance = ? WHERE name = ?"));
        s.Bind(1, after).Bind(2, user);
        SEALDROP_TRY(s.Run());
        return AppendAuditIn(
            db, Now(), "user.credit",
            DumpDetail({{"user", user}, {"amount", amount}, {"balance_after", after}}));
      });
    });
  }

  Result<ProgramRecord> AddProgram(const ProgramRecord& program) override {
    return Guarded([&]() -> Result<ProgramRecord> {
      SEALDROP_TRY(CheckProgram(program));
      return Write<ProgramRecord>([&](Db& db) -> Result<ProgramRecord> {
        ProgramRecord p = program;
        int64_t now = Now();
        if (p.added_at == 0) p.added_at = now;
        {
          SEALDROP_ASSIGN(Statement s,
                          db.Prepare("SELECT 1 FROM programs WHERE name = ? AND version = ?"));
          s.Bind(1, p.name).Bind(2, p.version);
          SEALDROP_ASSIGN(bool exists, s.Step());
          if (exists) {
            // Published versions are immutable: receipts and signed
            // manifests already name them.
            return Fail(ErrorCode::kRefused, "program \"" + p.name + "\" version " + p.version +
                                                 " already exists; publish it under a new version");
          }
        }
        {
          SEALDROP_ASSIGN(Statement s,
                          db.Prepare("INSERT INTO programs(name, version, price, kind, path, "
                                     "size, sha256, added_at, may_export) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                     "RETURNING id"));
          s.Bind(1, p.name).Bind(2, p.version).Bind(3, p.price).Bind(4, p.kind).Bind(5, p.path);
          s.Bind(6, static_cast<int64_t>(p.size)).Bind(7, p.sha256).Bind(8, p.added_at);
          s.Bind(9, int64_t{p.may_export ? 1 : 0});
          SEALDROP_ASSIGN(bool row, s.Step());
          if (!row) return Fail(ErrorCode::kInternal, "inserting a program returned no id");
          p.id = s.ColumnInt(0);
          SEALDROP_TRY(s.Run());
        }
        SEALDROP_TRY(AppendAuditIn(db, now, "program.add",
                                   DumpDetail({{"id", p.id},
                                               {"name", p.name},
                                               {"version", p.version},
                                               {"price", p.price},
                                               {"kind", p.kind},
                                               {"size", p.size},
                                               {"sha256", p.sha256},
                                               {"export", p.may_export}})));
        return p;
      });
    });
  }

  Result<std::vector<ProgramRecord>> Catalog() override {
    return Guarded([&]() -> Result<std::vector<ProgramRecord>> {
      return Read<std::vector<ProgramRecord>>([&](Db& db) -> Result<std::vector<ProgramRecord>> {
        SEALDROP_ASSIGN(Statement s, db.Prepare("SELECT " + std::string(kProgramColumns) +
                                                " FROM programs ORDER BY name, id"));
        std::vector<ProgramRecord> out;
        while (true) {
          SEALDROP_ASSIGN(bool row, s.Step());
          if (!row) break;
          out.push_back(ReadProgram(s));
        }
        return out;
      });
    });
  }

  Result<ProgramRecord> FindProgram(const std::string& name,
                                    const std::string& version) override {
    return Guarded([&]() -> Result<ProgramRecord> {
      return Read<ProgramRecord>([&](Db& db) -> Result<ProgramRecord> {
        if (!version.empty()) {
          SEALDROP_ASSIGN(Statement s, db.Prepare("SELECT " + std::string(kProgramColumns) +
                                                  " FROM programs WHERE name = ? AND version = ?"));
          s.Bind(1, name).Bind(2, version);
          SEALDROP_ASSIGN(bool row, s.Step());
          if (!row) {
            return Fail(ErrorCode::kNotFound, "program \"" + name + "\" has no version " +
                                                  version + "; list the catalogue to see versions");
          }
          return ReadProgram(s);
        }
        SEALDROP_ASSIGN(Statement s, db.Prepare("SELECT " + std::string(kProgramColumns) +
                                                " FROM programs WHERE name = ? ORDER BY id"));
        s.Bind(1, name);
        std::optional<ProgramRecord> newest;
        while (true) {
          SEALDROP_ASSIGN(bool row, s.Step());
          if (!row) break;
          ProgramRecord p = ReadProgram(s);
          // Rows come in id order, so ">=" lets a later addition win a tie.
          if (!newest || CompareVersions(p.version, newest->version) >= 0) newest = std::move(p);
        }
        if (!newest) {
          return Fail(ErrorCode::kNotFound,
                      "there is no program named \"" + name + "\"; list the catalogue to see "
                                                              "what is available");
        }
        return *newest;
      });
    });
  }

  Result<ProgramRecord> ProgramById(int64_t id) override {
    return Guarded([&]() -> Result<ProgramRecord> {
      return Read<ProgramRecord>([&](Db& db) -> Result<ProgramRecord> {
        SEALDROP_ASSIGN(auto program, LoadProgram(db, id));
        if (!program) {
          return Fail(ErrorCode::kNotFound, "there is no program with id " + std::to_string(id));
        }
        return *program;
      });
    });
  }

  Result<RevokeOutcome> RevokeDevice(const std::string& serial,
                                     const std::string& reason) override {
    return Guarded([&]() -> Result<RevokeOutcome> {
      SEALDROP_TRY(CheckIdentifier("device serial", serial, kMaxSerialSize));
      if (reason.size() > kMaxReasonSize || !IsUtf8(reason)) {
        return Fail(ErrorCode::kInvalidArgument,
                    "the revocation reason must be UTF-8 text of at most 1024 bytes");
      }
      return Write<RevokeOutcome>([&](Db& db) -> Result<RevokeOutcome> {
        RevokeOutcome outcome;
        SEALDROP_ASSIGN(outcome.already_revoked, LoadRevoked(db, serial));
        // Revoking twice changes nothing; the first reason and time stand.
        if (!outcome.already_revoked) {
          int64_t now = Now();
          SEALDROP_ASSIGN(Statement s, db.Prepare("INSERT INTO revoked_devices(serial, reason, "
                                                  "at) VALUES(?, ?, ?)"));
          s.Bind(1, serial).Bind(2, reason).Bind(3, now);
          SEALDROP_TRY(s.Run());
          SEALDROP_TRY(AppendAuditIn(db, now, "device.revoke",
                                     DumpDetail({{"serial", serial}, {"reason", reason}})));
        }
        SEALDROP_ASSIGN(auto devices, LoadDevices(db, serial));
        if (devices.size() != 1) return Fail(ErrorCode::kInternal, "a revoked device was not found");
        outcome.device = std::move(devices[0]);
        return outcome;
      });
    });
  }

  Result<bool> IsDeviceRevoked(const std::string& serial) override {
    return Guarded([&]() -> Result<bool> {
      return Read<bool>([&](Db& db) { return LoadRevoked(db, serial); });
    });
  }

  Result<std::vector<DeviceRecord>> Devices() override {
    return Guarded([&]() -> Result<std::vector<DeviceRecord>> {
      return Read<std::vector<DeviceRecord>>(
          [&](Db& db) { return LoadDevices(db, std::nullopt); });
    });
  }

  Result<ChargeOutcome> Charge(const ChargeRequest& request) override {
    return Guarded([&]() -> Result<ChargeOutcome> {
      SEALDROP_TRY(CheckIdentifier("user name", request.user, kMaxUserSize));
      SEALDROP_TRY(
          CheckIdentifier("idempotency key", request.idempotency_key, kMaxIdempotencyKeySize));
      SEALDROP_TRY(CheckIdentifier("device serial", request.device_serial, kMaxSerialSize));
      SEALDROP_TRY(CheckDigest("package digest", request.package_digest));
      if (!request.sign_receipt) {
        return Fail(ErrorCode::kInternal, "Charge was called without a receipt signer");
      }
      return Write<ChargeOutcome>([&](Db& db) { return ChargeIn(db, request, Now()); });
    });
  }

  Status CheckRedelivery(const DeliveryRequest& request) override {
    return Guarded([&]() -> Status {
      return ReadStatus([&](Db& db) -> Status {
        SEALDROP_ASSIGN(bool known_device, CheckRedeliveryIn(db, request));
        (void)known_device;
        return Ok();
      });
    });
  }

  Status RecordRedelivery(const DeliveryRequest& request) override {
    return Guarded([&]() -> Status {
      SEALDROP_TRY(CheckDigest("package digest", request.package_digest));
      return WriteStatus([&](Db& db) -> Status {
        SEALDROP_ASSIGN(bool known_device, CheckRedeliveryIn(db, request));
        int64_t now = Now();
        SEALDROP_TRY(InsertDelivery(db, request.receipt_id, request.device_serial,
                                    request.package_digest, now, false));
        return AppendAuditIn(db, now, "redelivery",
                             DumpDetail({{"user", request.user},
                                         {"receipt_id", request.receipt_id},
                                         {"device_serial", request.device_serial},
                                         {"package_digest", request.package_digest},
                                         {"new_device", !known_device}}));
      });
    });
  }

  Result<ReceiptRecord> FindReceipt(const std::string& receipt_id) override {
    return Guarded([&]() -> Result<ReceiptRecord> {
      return Read<ReceiptRecord>([&](Db& db) -> Result<ReceiptRecord> {
        SEALDROP_ASSIGN(auto receipt, LoadReceipt(db, receipt_id));
        if (!receipt) {
          return Fail(ErrorCode::kNotFound, "there is no receipt \"" + receipt_id + "\"");
        }
        return *receipt;
      });
    });
  }

  Result<std::optional<ReceiptRecord>> FindReceiptByKey(const std::string& user,
                                                        const std::string& key) override {
    using Found = std::optional<ReceiptRecord>;
    return Guarded([&]() -> Result<Found> {
      return Read<Found>([&](Db& db) -> Result<Found> {
        SEALDROP_ASSIGN(Statement s, db.Prepare(std::string(kReceiptSelect) +
                                                "WHERE r.user = ? AND r.idempotency_key = ?"));
        s.Bind(1, user).Bind(2, key);
        SEALDROP_ASSIGN(bool row, s.Step());
        if (!row) return Found();
        return Found(ReadReceipt(s));
      });
    });
  }

  Result<std::optional<ReceiptRecord>> FindOwnedReceipt(const std::string& user,
                                                        int64_t program_id) override {
    using Found = std::optional<ReceiptRecord>;
    return Guarded([&]() -> Result<Found> {
      return Read<Found>([&](Db& db) { return LoadOwnedReceipt(db, user, program_id); });
    });
  }

  Result<std::vector<ReceiptRecord>> Receipts(const std::string& user) override {
    return Guarded([&]() -> Result<std::vector<ReceiptRecord>> {
      return Read<std::vector<ReceiptRecord>>([&](Db& db) -> Result<std::vector<ReceiptRecord>> {
        SEALDROP_ASSIGN(Statement s, db.Prepare(std::string(kReceiptSelect) +
                                                "WHERE r.user = ? ORDER BY r.issued_at, r.rowid"));
        s.Bind(1, user);
        std::vector<ReceiptRecord> out;
        while (true) {
          SEALDROP_ASSIGN(bool row, s.Step());
          if (!row) break;
          out.push_back(ReadReceipt(s));
        }
        return out;
      });
    });
  }

  Status AppendAudit(const std::string& kind, const std::string& detail_json) override {
    return Guarded([&]() -> Status {
      SEALDROP_TRY(ValidateAuditKind(kind));
      if (detail_json.size() > kMaxAuditDetailSize) {
        return Fail(ErrorCode::kInvalidArgument, "the audit detail is larger than 64 KiB");
      }
      json detail = json::parse(detail_json, nullptr, /*allow_exceptions=*/false);
      if (detail.is_discarded()) {
        return Fail(ErrorCode::kInvalidArgument, "the audit detail is not valid JSON text");
      }
      // Stored in one compact form, so equal details read back equal.
      std::string canonical = DumpDetail(detail);
      return WriteStatus([&](Db& db) { return AppendAuditIn(db, Now(), kind, canonical); });
    });
  }

  Result<std::vector<AuditEntry>> AuditLog() override {
    return Guarded([&]() -> Result<std::vector<AuditEntry>> {
      return Read<std::vector<AuditEntry>>([&](Db& db) -> Result<std::vector<AuditEntry>> {
        std::vector<AuditEntry> out;
        SEALDROP_TRY(ForEachAuditEntry(db, [&](AuditEntry e) -> Status {
          out.push_back(std::move(e));
          return Ok();
        }));
        return out;
      });
    });
  }

  Status VerifyAudit() override {
    return Guarded([&]() -> Status {
      // On a read connection: a long log is checked in one snapshot without
      // holding up a single charge.
      return ReadStatus([&](Db& db) -> Status {
        AuditChainVerifier verifier;
        return ForEachAuditEntry(db, [&](AuditEntry e) { return verifier.Check(e); });
      });
    });
  }

 private:
  // Nothing may throw across the Ledger interface; allocation failures and
  // library exceptions become kInternal.
  template <typename F>
  static auto Guarded(F&& body) -> decltype(body()) {
    try {
      return body();
    } catch (const std::exception& e) {
      return Fail(ErrorCode::kInternal, std::string("unexpected ledger failure: ") + e.what());
    } catch (...) {
      return Fail(ErrorCode::kInternal, "unexpected ledger failure");
    }
  }

  int64_t Now() const { return UnixSeconds(clock_()); }

  // Runs `body(db)` on a read connection inside one read transaction (one
  // snapshot); the transaction ends before the connection is handed back.
  template <typename T, typename F>
  Result<T> Read(F&& body) {
    SEALDROP_ASSIGN(ReadPool::Lease lease, readers_.Acquire());
    SEALDROP_ASSIGN(Transaction txn, Transaction::Begin(lease.db(), Transaction::Mode::kRead));
    return body(lease.db());
  }

  template <typename F>
  Status ReadStatus(F&& body) {
    SEALDROP_ASSIGN(ReadPool::Lease lease, readers_.Acquire());
    SEALDROP_ASSIGN(Transaction txn, Transaction::Begin(lease.db(), Transaction::Mode::kRead));
    return body(lease.db());
  }

  // Runs `body(db)` as one write of the next batch (write_batcher.h); its
  // value is returned only once the batch has committed.
  template <typename T, typename F>
  Result<T> Write(F&& body) {
    std::optional<T> out;
    SEALDROP_TRY(writer_.Run([&](Db& db) -> Status {
      SEALDROP_ASSIGN(T value, body(db));
      out = std::move(value);
      return Ok();
    }));
    if (!out) return Fail(ErrorCode::kInternal, "a ledger write succeeded without a result");
    return std::move(*out);
  }

  template <typename F>
  Status WriteStatus(F&& body) {
    return writer_.Run([&](Db& db) -> Status { return body(db); });
  }

  template <typename F>
  static Status ForEachAuditEntry(Db& db, F&& visit) {
    SEALDROP_ASSIGN(Statement s, db.Prepare("SELECT seq, time, kind, detail, prev_hash, hash "
                                            "FROM audit ORDER BY seq"));
    while (true) {
      SEALDROP_ASSIGN(bool row, s.Step());
      if (!row) return Ok();
      AuditEntry e;
      e.seq = s.ColumnInt(0);
      e.time = s.ColumnInt(1);
      e.kind = s.ColumnText(2);
      e.detail = s.ColumnText(3);
      e.prev_hash = s.ColumnText(4);
      e.hash = s.ColumnText(5);
      SEALDROP_TRY(visit(std::move(e)));
    }
  }

  const std::function<std::chrono::system_clock::time_point()> clock_;
  // Declared before the readers, so destroyed after them: the writer's
  // connection is the last to close and checkpoints the WAL.
  WriteBatcher writer_;
  ReadPool readers_;
};

Result<std::unique_ptr<Ledger>> Open(const fs::path& db_path, bool create,
                                     const SqliteLedgerOptions& options) {
  if (options.max_batch < 1 || options.read_connections < 1) {
    return Fail(ErrorCode::kInvalidArgument,
                "the ledger needs a batch of at least 1 write and at least 1 read connection");
  }
  PreparePasswordHashing();
  SEALDROP_ASSIGN(Db db, OpenLedgerDatabase(db_path, create));
  return std::unique_ptr<Ledger>(std::make_unique<SqliteLedger>(std::move(db), db_path, options));
}

}  // namespace

Result<std::unique_ptr<Ledger>> OpenSqliteLedger(const std::filesystem::path& db_path,
                                                 bool create) {
  return OpenSqliteLedger(db_path, create, SqliteLedgerOptions{});
}

Result<std::unique_ptr<Ledger>> OpenSqliteLedger(const std::filesystem::path& db_path,
                                                 bool create, const SqliteLedgerOptions& options) {
  try {
    return Open(db_path, create, options);
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kInternal, std::string("unexpected failure opening the ledger: ") +
                                          e.what());
  }
}

}  // namespace sealdrop
