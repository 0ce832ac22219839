// The SQLite ledger reads every time it stores or compares from the clock it
// is given, so expiry is tested by moving that clock, not by waiting.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "ledger/ledger_test_fixture.h"

namespace sealdrop {
namespace {

using ledger_testing::kPkgDigest;
using ledger_testing::LedgerTest;
using ledger_testing::RawExec;

constexpr int64_t kStart = 1'800'000'000;  // 2027-01-15, far from the real time

class LedgerClockTest : public LedgerTest {
 protected:
  void SetUp() override {
    LedgerTest::SetUp();
    ReopenWithClock();
  }

  void ReopenWithClock() {
    ledger_.reset();
    SqliteLedgerOptions options;
    options.clock = [this] {
      return std::chrono::system_clock::time_point(std::chrono::seconds(now_.load()));
    };
    auto opened = OpenSqliteLedger(path_, false, options);
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    ledger_ = std::move(*opened);
  }

  void Advance(int64_t seconds) { now_ += seconds; }

  int64_t CountTokens() {
    int64_t n = -1;
    sqlite3* raw = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(raw, "SELECT COUNT(*) FROM tokens", -1, &s, nullptr) == SQLITE_OK &&
          sqlite3_step(s) == SQLITE_ROW) {
        n = sqlite3_column_int64(s, 0);
      }
      sqlite3_finalize(s);
    }
    sqlite3_close(raw);
    return n;
  }

  std::atomic<int64_t> now_{kStart};
};

TEST_F(LedgerClockTest, ATokenLogsInUntilItsLifetimeEndsAndNotAfter) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 10).has_value());
  auto token = ledger_->IssueToken("alice", 60);
  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_TRUE(ledger_->AuthenticateToken("alice", *token).has_value());
  Advance(59);
  EXPECT_TRUE(ledger_->AuthenticateToken("alice", *token).has_value());
  Advance(1);  // the last second of its lifetime still counts
  EXPECT_TRUE(ledger_->AuthenticateToken("alice", *token).has_value());
  Advance(1);
  auto expired = ledger_->AuthenticateToken("alice", *token);
  ASSERT_FALSE(expired.has_value());
  // The same answer as a wrong token: nothing says the token once existed.
  EXPECT_EQ(expired.error().code, ErrorCode::kAuthFailed);
  EXPECT_EQ(expired.error().message, ledger_->AuthenticateToken("alice", "x").error().message);
  // Expired stays expired across a restart.
  ReopenWithClock();
  EXPECT_FALSE(ledger_->AuthenticateToken("alice", *token).has_value());
}

TEST_F(LedgerClockTest, IssuingATokenDropsOnlyTheExpiredOnes) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 10).has_value());
  auto short_lived = ledger_->IssueToken("alice", 10);
  auto long_lived = ledger_->IssueToken("alice", 1000);
  ASSERT_TRUE(short_lived.has_value());
  ASSERT_TRUE(long_lived.has_value());
  EXPECT_EQ(CountTokens(), 2);
  Advance(11);
  auto fresh = ledger_->IssueToken("alice", 10);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(CountTokens(), 2);  // the short-lived one is gone, the others stay
  EXPECT_FALSE(ledger_->AuthenticateToken("alice", *short_lived).has_value());
  EXPECT_TRUE(ledger_->AuthenticateToken("alice", *long_lived).has_value());
  EXPECT_TRUE(ledger_->AuthenticateToken("alice", *fresh).has_value());
}

TEST_F(LedgerClockTest, ATokenLifetimePastTheEndOfTimeIsRefused) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 10).has_value());
  auto r = ledger_->IssueToken("alice", std::numeric_limits<int64_t>::max());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(LedgerClockTest, EveryStoredTimeComesFromTheClock) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  EXPECT_EQ(prog.added_at, kStart);

  Advance(5);
  int64_t signed_at = 0;
  ChargeRequest c = MakeCharge("alice", "k", prog.id);
  c.sign_receipt = [&](const std::string& id, int64_t at, int64_t) -> Result<std::string> {
    signed_at = at;
    return "jws." + id;
  };
  auto charged = ledger_->Charge(c);
  ASSERT_TRUE(charged.has_value()) << charged.error().message;
  EXPECT_EQ(charged->receipt.issued_at, kStart + 5);
  EXPECT_EQ(signed_at, kStart + 5);
  EXPECT_EQ(ledger_->FindReceipt(charged->receipt.receipt_id)->issued_at, kStart + 5);

  Advance(10);
  ASSERT_TRUE(ledger_->RecordRedelivery({"alice", charged->receipt.receipt_id, "dev-1", kPkgDigest, 3})
                  .has_value());
  Advance(10);
  auto revoked = ledger_->RevokeDevice("dev-1", "lost");
  ASSERT_TRUE(revoked.has_value());
  EXPECT_EQ(revoked->device.first_seen, kStart + 5);
  EXPECT_EQ(revoked->device.last_seen, kStart + 15);
  EXPECT_EQ(revoked->device.revoked_at, kStart + 25);

  auto log = ledger_->AuditLog();
  ASSERT_TRUE(log.has_value());
  std::vector<int64_t> times;
  for (const auto& e : *log) times.push_back(e.time);
  EXPECT_EQ(times, (std::vector<int64_t>{kStart, kStart, kStart + 5, kStart + 15, kStart + 25}));
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());
}

}  // namespace
}  // namespace sealdrop
