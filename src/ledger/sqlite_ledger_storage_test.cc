#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "ledger/ledger_test_fixture.h"

namespace sealdrop {
namespace {

namespace fs = std::filesystem;
using ledger_testing::kPkgDigest;
using ledger_testing::LedgerTest;
using ledger_testing::RawExec;

TEST_F(LedgerTest, EveryChangeIsAuditedAndTheChainVerifies) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  ASSERT_TRUE(ledger_->AddCredit("alice", 5).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  ASSERT_TRUE(ledger_->RevokeDevice("dev-x", "lost").has_value());
  auto charged = ledger_->Charge(MakeCharge("alice", "o", prog.id));
  ASSERT_TRUE(charged.has_value());
  DeliveryRequest d{"alice", charged->receipt.receipt_id, "dev-2", kPkgDigest, 3};
  ASSERT_TRUE(ledger_->RecordRedelivery(d).has_value());
  ASSERT_TRUE(ledger_->AppendAudit("server.start", R"({"version": "0.1.0"})").has_value());

  auto log = ledger_->AuditLog();
  ASSERT_TRUE(log.has_value());
  std::vector<std::string> kinds;
  for (const auto& e : *log) kinds.push_back(e.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{"user.add", "user.credit", "program.add",
                                             "device.revoke", "charge", "redelivery",
                                             "server.start"}));
  EXPECT_EQ(log->front().seq, 1);
  EXPECT_EQ(log->front().prev_hash, std::string(64, '0'));
  for (size_t i = 1; i < log->size(); ++i) EXPECT_EQ((*log)[i].prev_hash, (*log)[i - 1].hash);
  EXPECT_EQ(log->back().detail, R"({"version":"0.1.0"})");
  for (const auto& e : *log) EXPECT_EQ(e.detail.find("pw"), std::string::npos);
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());

  EXPECT_EQ(ledger_->AppendAudit("server.start", "{not json").error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(ledger_->AppendAudit("Bad Kind", "{}").error().code, ErrorCode::kInvalidArgument);
}

TEST_F(LedgerTest, TamperingWithTheAuditLogIsDetected) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  ASSERT_TRUE(ledger_->AddUser("bob", "pw", 100).has_value());
  ASSERT_TRUE(ledger_->AddCredit("alice", 5).has_value());
  ASSERT_TRUE(ledger_->AddCredit("bob", 5).has_value());
  ASSERT_TRUE(ledger_->VerifyAudit().has_value());

  // The triggers stop casual edits...
  EXPECT_NE(RawExec(path_, "UPDATE audit SET detail='{}' WHERE seq=2"), "");
  EXPECT_NE(RawExec(path_, "DELETE FROM audit WHERE seq=2"), "");
  ASSERT_TRUE(ledger_->VerifyAudit().has_value());

  // ...but whoever can write the file can drop them; the chain still tells.
  ASSERT_EQ(RawExec(path_, "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;"), "");
  ASSERT_EQ(RawExec(path_, R"(UPDATE audit SET detail='{"user":"bob","credit":1000000}' )"
                           "WHERE seq=2"),
            "");
  auto edited = ledger_->VerifyAudit();
  ASSERT_FALSE(edited.has_value());
  EXPECT_EQ(edited.error().code, ErrorCode::kCryptoFailure);
  EXPECT_NE(edited.error().message.find("entry 2 "), std::string::npos) << edited.error().message;
}

TEST_F(LedgerTest, DeletingAnAuditEntryIsDetected) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  ASSERT_TRUE(ledger_->AddCredit("alice", 1).has_value());
  ASSERT_TRUE(ledger_->AddCredit("alice", 2).has_value());
  ASSERT_TRUE(ledger_->AddCredit("alice", 3).has_value());
  ASSERT_EQ(RawExec(path_, "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq=2;"), "");
  auto st = ledger_->VerifyAudit();
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kCryptoFailure);
  EXPECT_NE(st.error().message.find("entry 2 "), std::string::npos) << st.error().message;

  // Renumbering to hide the gap breaks the link instead.
  ASSERT_EQ(RawExec(path_, "DROP TRIGGER audit_no_update; "
                           "UPDATE audit SET seq = seq - 1 WHERE seq > 2;"),
            "");
  auto renumbered = ledger_->VerifyAudit();
  ASSERT_FALSE(renumbered.has_value());
  EXPECT_NE(renumbered.error().message.find("entry 2 "), std::string::npos)
      << renumbered.error().message;
}

TEST_F(LedgerTest, ConcurrentChargesWithOneKeyDebitOnce) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 1000).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  constexpr int kThreads = 8;
  std::vector<Result<ChargeOutcome>> results(kThreads, Fail(ErrorCode::kInternal, "unset"));
  std::atomic<int> signer_calls{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ChargeRequest r = MakeCharge("alice", "same-key", prog.id);
      r.sign_receipt = [&](const std::string& id, int64_t, int64_t) -> Result<std::string> {
        signer_calls++;
        return "jws." + id;
      };
      results[i] = ledger_->Charge(r);
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> ids;
  int fresh = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.has_value()) << r.error().message;
    ids.insert(r->receipt.receipt_id);
    fresh += r->replayed ? 0 : 1;
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(fresh, 1);
  EXPECT_EQ(signer_calls.load(), 1);
  EXPECT_EQ(BalanceOf("alice"), 970);
}

TEST_F(LedgerTest, ConcurrentChargesThroughSeparateConnectionsDebitOnce) {
  // Two Ledger objects on one file stand for two server processes.
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 1000).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  auto other = OpenSqliteLedger(path_, false);
  ASSERT_TRUE(other.has_value()) << other.error().message;
  Ledger* ledgers[2] = {ledger_.get(), other->get()};
  constexpr int kThreads = 6;
  std::vector<Result<ChargeOutcome>> results(kThreads, Fail(ErrorCode::kInternal, "unset"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      results[i] = ledgers[i % 2]->Charge(MakeCharge("alice", "shared", prog.id));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> ids;
  for (const auto& r : results) {
    ASSERT_TRUE(r.has_value()) << r.error().message;
    ids.insert(r->receipt.receipt_id);
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(BalanceOf("alice"), 970);
  EXPECT_TRUE((*other)->VerifyAudit().has_value());
}

TEST_F(LedgerTest, EverythingSurvivesReopening) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  ASSERT_TRUE(ledger_->RevokeDevice("dev-x", "lost").has_value());
  auto charged = ledger_->Charge(MakeCharge("alice", "order-1", prog.id));
  ASSERT_TRUE(charged.has_value());
  auto log_before = ledger_->AuditLog();
  ASSERT_TRUE(log_before.has_value());

  Reopen(false);

  EXPECT_TRUE(ledger_->Authenticate("alice", "pw").has_value());
  EXPECT_EQ(BalanceOf("alice"), 70);
  EXPECT_EQ(ledger_->FindProgram("tool", "")->id, prog.id);
  EXPECT_TRUE(*ledger_->IsDeviceRevoked("dev-x"));
  auto receipt = ledger_->FindReceipt(charged->receipt.receipt_id);
  ASSERT_TRUE(receipt.has_value());
  EXPECT_EQ(receipt->jws, charged->receipt.jws);
  auto replay = ledger_->Charge(MakeCharge("alice", "order-1", prog.id));
  ASSERT_TRUE(replay.has_value());
  EXPECT_TRUE(replay->replayed);
  EXPECT_EQ(BalanceOf("alice"), 70);
  auto log_after = ledger_->AuditLog();
  ASSERT_TRUE(log_after.has_value());
  EXPECT_EQ(log_after->size(), log_before->size());
  EXPECT_EQ(log_after->back().hash, log_before->back().hash);
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());

  // New entries continue the old chain.
  ASSERT_TRUE(ledger_->AddCredit("alice", 1).has_value());
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());
}

TEST_F(LedgerTest, DatabaseFileIsPrivate) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(LedgerTest, OpeningAMissingDatabaseWithoutCreateFails) {
  fs::path missing = dir_ / "nope" / "ledger.db";
  auto r = OpenSqliteLedger(missing, false);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().message.find("does not exist"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(missing.string()), std::string::npos);
  EXPECT_FALSE(fs::exists(missing));
  EXPECT_FALSE(fs::exists(missing.parent_path()));

  // With create, missing parent directories are made.
  auto created = OpenSqliteLedger(missing, true);
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_TRUE(fs::exists(missing));
}

TEST_F(LedgerTest, GarbageFileFailsClearly) {
  fs::path junk = dir_ / "junk.db";
  {
    std::ofstream out(junk, std::ios::binary);
    std::string bytes(8192, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131 + 7) % 251);
    out << bytes;
  }
  for (bool create : {false, true}) {
    auto r = OpenSqliteLedger(junk, create);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kIo);
    EXPECT_NE(r.error().message.find(junk.string()), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("not a database"), std::string::npos) << r.error().message;
  }
}

TEST_F(LedgerTest, ForeignOrNewerDatabasesAreRefused) {
  fs::path other = dir_ / "other.db";
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(other.c_str(), &raw), SQLITE_OK);
    sqlite3_exec(raw, "CREATE TABLE t(x)", nullptr, nullptr, nullptr);
    sqlite3_close(raw);
  }
  auto foreign = OpenSqliteLedger(other, true);
  ASSERT_FALSE(foreign.has_value());
  EXPECT_NE(foreign.error().message.find("not a sealdrop ledger"), std::string::npos)
      << foreign.error().message;

  ledger_.reset();
  ASSERT_EQ(RawExec(path_, "PRAGMA user_version=99"), "");
  auto newer = OpenSqliteLedger(path_, false);
  ASSERT_FALSE(newer.has_value());
  EXPECT_NE(newer.error().message.find("schema version 99"), std::string::npos)
      << newer.error().message;
}

TEST_F(LedgerTest, EmptyFileWithoutCreateIsRefusedButCreateInitialisesIt) {
  fs::path empty = dir_ / "empty.db";
  { std::ofstream out(empty); }
  auto r = OpenSqliteLedger(empty, false);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  auto created = OpenSqliteLedger(empty, true);
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_TRUE((*created)->Catalog()->empty());
}

}  // namespace
}  // namespace sealdrop
