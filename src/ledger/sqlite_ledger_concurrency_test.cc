// The SQLite ledger under concurrent callers: group commit (many charges, one
// transaction, one fsync), refusals that roll back only themselves, a failed
// COMMIT that fails its whole batch, and reads that never wait for a write.
//
// The fault VFS (testing/fault_vfs.h) is SQLite's default VFS in this test
// binary: it counts the writer's fsyncs and fails the COMMIT of a chosen batch.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "ledger/ledger_test_fixture.h"
#include "ledger/testing/fault_vfs.h"

namespace sealdrop {
namespace {

using namespace std::chrono_literals;
using ledger_testing::kPkgDigest;
using ledger_testing::LedgerTest;
using testing::DiskFault;
using testing::FaultVfs;

constexpr int kThreads = 64;

// A door one thread waits at until another opens it; tells whether anyone
// has reached it.
class Gate {
 public:
  void Wait() {
    std::unique_lock lock(mu_);
    reached_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  // False if nobody reached the gate in time.
  bool AwaitReached() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return reached_; });
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool reached_ = false;
  bool open_ = false;
};

struct Batch {
  size_t writes = 0;
  bool committed = false;
};

class LedgerConcurrencyTest : public LedgerTest {
 protected:
  void SetUp() override {
    FaultVfs::Install();
    LedgerTest::SetUp();
    ReopenWith(Options());
  }

  SqliteLedgerOptions Options() {
    SqliteLedgerOptions options;
    options.on_batch = [this](size_t writes, bool committed) {
      std::lock_guard lock(batches_mu_);
      batches_.push_back({writes, committed});
      // Arms the fault between two batches: the next batch's COMMIT is the
      // first to reach the disk after this point.
      if (arm_after_next_batch_) {
        arm_after_next_batch_ = false;
        FaultVfs::Arm(*arm_after_next_batch_fault_, 0);
      }
    };
    return options;
  }

  void ReopenWith(const SqliteLedgerOptions& options) {
    ledger_.reset();
    auto opened = OpenSqliteLedger(path_, false, options);
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    ledger_ = std::move(*opened);
  }

  std::vector<Batch> BatchesSince(size_t from) {
    std::lock_guard lock(batches_mu_);
    return std::vector<Batch>(batches_.begin() + static_cast<std::ptrdiff_t>(from), batches_.end());
  }
  size_t BatchCount() {
    std::lock_guard lock(batches_mu_);
    return batches_.size();
  }

  // Charges `first` on a thread of its own and holds it inside its write
  // (its signer waits) until every one of `rest` has been started on a
  // thread of its own and had time to queue; then lets all go. The rest thus
  // queue behind a transaction in progress and commit together.
  std::vector<Result<ChargeOutcome>> ChargeBehindOne(ChargeRequest first,
                                                     std::vector<ChargeRequest> rest) {
    std::vector<Result<ChargeOutcome>> results(rest.size() + 1,
                                               Fail(ErrorCode::kInternal, "not run"));
    Gate gate;
    auto sign = first.sign_receipt;
    first.sign_receipt = [&gate, sign](const std::string& id, int64_t at,
                                       int64_t amount) -> Result<std::string> {
      gate.Wait();
      return sign(id, at, amount);
    };
    std::thread head([&] { results[0] = ledger_->Charge(first); });
    EXPECT_TRUE(gate.AwaitReached()) << "the first charge never reached its signer";
    std::atomic<size_t> started{0};
    std::vector<std::thread> threads;
    for (size_t i = 0; i < rest.size(); ++i) {
      threads.emplace_back([&, i] {
        started++;
        results[i + 1] = ledger_->Charge(rest[i]);
      });
    }
    while (started.load() < rest.size()) std::this_thread::sleep_for(1ms);
    // From "started" to "queued" is a few instructions; this is ample.
    std::this_thread::sleep_for(500ms);
    gate.Open();
    head.join();
    for (auto& t : threads) t.join();
    return results;
  }

  std::mutex batches_mu_;
  std::vector<Batch> batches_;
  bool arm_after_next_batch_ = false;  // guarded by batches_mu_
  std::optional<DiskFault> arm_after_next_batch_fault_;
};

ChargeRequest Again(ChargeRequest r) {
  r.again = true;
  return r;
}

TEST_F(LedgerConcurrencyTest, SixtyFourThreadsWithDistinctKeysAllChargeExactlyOnce) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 1'000'000).has_value());
  ASSERT_TRUE(ledger_->AddUser("bob", "pw", 1'000'000).has_value());
  auto prog = AddProgram("tool", "1.0", 10);
  constexpr int kPerThread = 4;
  std::vector<std::vector<Result<ChargeOutcome>>> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string user = t % 2 == 0 ? "alice" : "bob";
        std::string key = "k-" + std::to_string(t) + "-" + std::to_string(i);
        results[t].push_back(ledger_->Charge(Again(MakeCharge(user, key, prog.id))));
      }
    });
  }
  for (auto& t : threads) t.join();

  std::set<std::string> receipt_ids;
  for (int t = 0; t < kThreads; ++t) {
    for (const auto& r : results[t]) {
      ASSERT_TRUE(r.has_value()) << r.error().message;
      EXPECT_FALSE(r->replayed);
      EXPECT_GE(r->balance_after, 0);
      receipt_ids.insert(r->receipt.receipt_id);
    }
  }
  constexpr int kPerUser = kThreads / 2 * kPerThread;
  EXPECT_EQ(receipt_ids.size(), size_t{kThreads * kPerThread});
  EXPECT_EQ(BalanceOf("alice"), 1'000'000 - 10 * kPerUser);
  EXPECT_EQ(BalanceOf("bob"), 1'000'000 - 10 * kPerUser);
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());

  // Everything reported charged is on disk.
  ReopenWith(Options());
  EXPECT_EQ(ledger_->Receipts("alice")->size(), size_t{kPerUser});
  EXPECT_EQ(ledger_->Receipts("bob")->size(), size_t{kPerUser});
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      std::string user = t % 2 == 0 ? "alice" : "bob";
      auto found = ledger_->FindReceiptByKey(user, "k-" + std::to_string(t) + "-" + std::to_string(i));
      ASSERT_TRUE(found.has_value());
      ASSERT_TRUE(found->has_value());
      EXPECT_EQ((*found)->receipt_id, results[t][i]->receipt.receipt_id);
    }
  }
  EXPECT_EQ(BalanceOf("alice"), 1'000'000 - 10 * kPerUser);
  auto log = ledger_->AuditLog();
  ASSERT_TRUE(log.has_value());
  size_t charges = 0;
  for (const auto& e : *log) charges += e.kind == "charge" ? 1 : 0;
  EXPECT_EQ(charges, size_t{kThreads * kPerThread});
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());
}

TEST_F(LedgerConcurrencyTest, OneKeyFromSixtyFourThreadsDebitsOnce) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 1000).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  std::atomic<int> signer_calls{0};
  std::vector<Result<ChargeOutcome>> results(kThreads, Fail(ErrorCode::kInternal, "unset"));
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
    EXPECT_EQ(r->balance_after, 970);
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(fresh, 1);
  EXPECT_EQ(signer_calls.load(), 1);
  EXPECT_EQ(BalanceOf("alice"), 970);
  ReopenWith(Options());
  EXPECT_EQ(ledger_->Receipts("alice")->size(), 1u);
  EXPECT_EQ(BalanceOf("alice"), 970);
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());
}

TEST_F(LedgerConcurrencyTest, OnlyTheChargesTheBalanceCoversSucceedAndTheRestChangeNothing) {
  // carol can pay for 10 of 64; dave tries to buy one version 16 times.
  ASSERT_TRUE(ledger_->AddUser("carol", "pw", 300).has_value());
  ASSERT_TRUE(ledger_->AddUser("dave", "pw", 1000).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  constexpr int kDave = 16;
  std::vector<Result<ChargeOutcome>> carol(kThreads, Fail(ErrorCode::kInternal, "unset"));
  std::vector<Result<ChargeOutcome>> dave(kDave, Fail(ErrorCode::kInternal, "unset"));
  std::atomic<bool> negative_seen{false};
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    while (!stop.load()) {
      auto b = ledger_->Balance("carol");
      if (b && *b < 0) negative_seen = true;
    }
  });
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      carol[i] = ledger_->Charge(Again(MakeCharge("carol", "c-" + std::to_string(i), prog.id)));
    });
  }
  for (int i = 0; i < kDave; ++i) {
    threads.emplace_back([&, i] {
      dave[i] = ledger_->Charge(MakeCharge("dave", "d-" + std::to_string(i), prog.id));
    });
  }
  for (auto& t : threads) t.join();
  stop = true;
  watcher.join();
  EXPECT_FALSE(negative_seen.load());

  int carol_ok = 0, dave_ok = 0;
  for (const auto& r : carol) {
    if (r) {
      ++carol_ok;
      EXPECT_GE(r->balance_after, 0);
    } else {
      EXPECT_EQ(r.error().code, ErrorCode::kInsufficientFunds) << r.error().message;
    }
  }
  for (const auto& r : dave) {
    if (r) {
      ++dave_ok;
    } else {
      EXPECT_EQ(r.error().code, ErrorCode::kAlreadyOwned) << r.error().message;
    }
  }
  EXPECT_EQ(carol_ok, 10);
  EXPECT_EQ(dave_ok, 1);
  EXPECT_EQ(BalanceOf("carol"), 0);
  EXPECT_EQ(BalanceOf("dave"), 970);
  // A refused charge leaves no receipt behind under its key.
  for (int i = 0; i < kThreads; ++i) {
    auto found = ledger_->FindReceiptByKey("carol", "c-" + std::to_string(i));
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->has_value(), carol[i].has_value());
  }
  ReopenWith(Options());
  EXPECT_EQ(ledger_->Receipts("carol")->size(), 10u);
  EXPECT_EQ(ledger_->Receipts("dave")->size(), 1u);
  EXPECT_EQ(BalanceOf("carol"), 0);
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());
}

TEST_F(LedgerConcurrencyTest, ChargesQueuedBehindACommitShareOneTransactionAndOneFsync) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 1'000'000).has_value());
  auto prog = AddProgram("tool", "1.0", 10);
  // How many fsyncs one charge alone costs.
  FaultVfs::Arm(DiskFault::kSync, ~uint64_t{0});
  ASSERT_TRUE(ledger_->Charge(Again(MakeCharge("alice", "alone", prog.id))).has_value());
  const uint64_t per_commit = FaultVfs::Seen();
  ASSERT_GE(per_commit, 1u) << "synchronous=FULL must sync at COMMIT";

  std::vector<ChargeRequest> rest;
  for (int i = 0; i < 40; ++i) rest.push_back(Again(MakeCharge("alice", "r-" + std::to_string(i), prog.id)));
  const size_t before = BatchCount();
  FaultVfs::Arm(DiskFault::kSync, ~uint64_t{0});
  auto results = ChargeBehindOne(Again(MakeCharge("alice", "first", prog.id)), rest);
  const uint64_t syncs = FaultVfs::Seen();
  FaultVfs::Disarm();
  for (const auto& r : results) ASSERT_TRUE(r.has_value()) << r.error().message;

  auto batches = BatchesSince(before);
  size_t writes = 0, largest = 0;
  for (const auto& b : batches) {
    EXPECT_TRUE(b.committed);
    writes += b.writes;
    largest = std::max(largest, b.writes);
  }
  EXPECT_EQ(writes, results.size());
  EXPECT_EQ(largest, rest.size()) << "the queued charges did not commit together";
  EXPECT_EQ(syncs, per_commit * batches.size());
  EXPECT_LT(syncs, per_commit * results.size() / 4);
  EXPECT_EQ(BalanceOf("alice"), 1'000'000 - 10 * static_cast<int64_t>(results.size() + 1));

  // The audit chain holds the batch in order, one entry per charge.
  auto log = ledger_->AuditLog();
  ASSERT_TRUE(log.has_value());
  std::set<std::string> keys;
  for (const auto& e : *log) {
    if (e.kind != "charge") continue;
    auto detail = nlohmann::json::parse(e.detail);
    keys.insert(detail["idempotency_key"].get<std::string>());
  }
  EXPECT_EQ(keys.size(), results.size() + 1);
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());
}

TEST_F(LedgerConcurrencyTest, ARefusalInsideABatchRollsBackOnlyItself) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 1000).has_value());
  ASSERT_TRUE(ledger_->AddUser("poor", "pw", 5).has_value());
  auto prog = AddProgram("tool", "1.0", 10);
  auto other = AddProgram("other", "1.0", 10);
  const size_t audit_before = AuditSize();
  std::vector<ChargeRequest> rest;
  rest.push_back(Again(MakeCharge("alice", "ok-1", prog.id)));
  rest.push_back(Again(MakeCharge("poor", "too-poor", prog.id)));        // insufficient funds
  // The batch runs in the order the charges queued, which the threads
  // decide: of owned-a and owned-b one buys, the other is refused as owned;
  // of the two ok-1 one charges, the other replays it.
  rest.push_back(MakeCharge("alice", "owned-a", other.id));
  rest.push_back(MakeCharge("alice", "owned-b", other.id));
  ChargeRequest failing = Again(MakeCharge("alice", "signer-fails", prog.id));
  failing.sign_receipt = [](const std::string&, int64_t, int64_t) -> Result<std::string> {
    return Fail(ErrorCode::kInternal, "no key");
  };
  rest.push_back(failing);
  rest.push_back(Again(MakeCharge("alice", "ok-1", prog.id)));
  rest.push_back(Again(MakeCharge("alice", "ok-2", prog.id, "dev-revoked")));  // revoked below
  rest.push_back(Again(MakeCharge("alice", "ok-3", prog.id)));
  ASSERT_TRUE(ledger_->RevokeDevice("dev-revoked", "cloned").has_value());
  const size_t batches_before = BatchCount();
  auto results = ChargeBehindOne(Again(MakeCharge("alice", "first", prog.id)), rest);

  // What matters here is that refusals shared a transaction with charges
  // that went through; how many batches the queue made is up to the threads.
  auto batches = BatchesSince(batches_before);
  ASSERT_GE(batches.size(), 2u);
  size_t writes = 0;
  for (const auto& b : batches) {
    EXPECT_TRUE(b.committed);
    writes += b.writes;
  }
  EXPECT_EQ(writes, rest.size() + 1);
  EXPECT_GE(batches[1].writes, 2u);

  ASSERT_TRUE(results[0].has_value());
  ASSERT_TRUE(results[1].has_value()) << results[1].error().message;
  EXPECT_EQ(results[2].error().code, ErrorCode::kInsufficientFunds);
  const auto& owned_a = results[3];
  const auto& owned_b = results[4];
  ASSERT_NE(owned_a.has_value(), owned_b.has_value());
  EXPECT_EQ((owned_a ? owned_b : owned_a).error().code, ErrorCode::kAlreadyOwned);
  EXPECT_EQ(results[5].error().code, ErrorCode::kInternal);
  ASSERT_TRUE(results[6].has_value());
  EXPECT_NE(results[1]->replayed, results[6]->replayed);
  EXPECT_EQ(results[6]->receipt.receipt_id, results[1]->receipt.receipt_id);
  EXPECT_EQ(results[7].error().code, ErrorCode::kRefused);
  ASSERT_TRUE(results[8].has_value());

  // first, ok-1, one of owned-a and owned-b, and ok-3 were charged; nothing
  // else left a trace.
  EXPECT_EQ(BalanceOf("alice"), 1000 - 4 * 10);
  EXPECT_EQ(BalanceOf("poor"), 5);
  EXPECT_EQ(ledger_->Receipts("alice")->size(), 4u);
  EXPECT_FALSE(ledger_->FindReceiptByKey("alice", "signer-fails")->has_value());
  EXPECT_FALSE(ledger_->FindReceiptByKey("alice", owned_a ? "owned-b" : "owned-a")->has_value());
  EXPECT_EQ(AuditSize(), audit_before + 1 + 4);  // the revocation and four charges
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());
  ReopenWith(Options());
  EXPECT_EQ(ledger_->Receipts("alice")->size(), 4u);
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());
}

TEST_F(LedgerConcurrencyTest, WithGroupCommitOffEveryWriteCommitsAlone) {
  SqliteLedgerOptions options = Options();
  options.max_batch = 1;
  ReopenWith(options);
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 1000).has_value());
  auto prog = AddProgram("tool", "1.0", 10);
  std::vector<ChargeRequest> rest;
  for (int i = 0; i < 8; ++i) rest.push_back(Again(MakeCharge("alice", "r-" + std::to_string(i), prog.id)));
  const size_t before = BatchCount();
  auto results = ChargeBehindOne(Again(MakeCharge("alice", "first", prog.id)), rest);
  for (const auto& r : results) ASSERT_TRUE(r.has_value()) << r.error().message;
  auto batches = BatchesSince(before);
  EXPECT_EQ(batches.size(), results.size());
  for (const auto& b : batches) EXPECT_EQ(b.writes, 1u);
  EXPECT_EQ(BalanceOf("alice"), 1000 - 10 * 9);
}

TEST_F(LedgerConcurrencyTest, OpeningRefusesAnEmptyBatchOrNoReaders) {
  SqliteLedgerOptions options;
  options.max_batch = 0;
  EXPECT_EQ(OpenSqliteLedger(path_, false, options).error().code, ErrorCode::kInvalidArgument);
  options.max_batch = 1;
  options.read_connections = 0;
  EXPECT_EQ(OpenSqliteLedger(path_, false, options).error().code, ErrorCode::kInvalidArgument);
}

class LedgerCommitFaultTest : public LedgerConcurrencyTest,
                              public ::testing::WithParamInterface<DiskFault> {};

TEST_P(LedgerCommitFaultTest, AFailedCommitFailsTheWholeBatchAndRecordsNoneOfIt) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 1000).has_value());
  ASSERT_TRUE(ledger_->AddUser("bob", "pw", 1000).has_value());
  auto prog = AddProgram("tool", "1.0", 10);
  const size_t audit_before = AuditSize();
  std::vector<ChargeRequest> rest;
  for (int i = 0; i < 12; ++i) {
    rest.push_back(Again(MakeCharge(i % 2 == 0 ? "alice" : "bob", "r-" + std::to_string(i), prog.id)));
  }
  rest.push_back(Again(MakeCharge("alice", "r-0", prog.id)));  // the same key twice in one batch
  rest.push_back(Again(MakeCharge("nobody", "r-x", prog.id)));  // refused in any case
  const size_t before = BatchCount();
  {
    std::lock_guard lock(batches_mu_);
    arm_after_next_batch_ = true;
    arm_after_next_batch_fault_ = GetParam();
  }
  auto results = ChargeBehindOne(Again(MakeCharge("alice", "first", prog.id)), rest);
  const bool fired = FaultVfs::Fired();
  FaultVfs::Disarm();
  ASSERT_TRUE(fired) << "the fault never reached the disk";

  auto batches = BatchesSince(before);
  ASSERT_GE(batches.size(), 2u);
  EXPECT_TRUE(batches[0].committed);
  EXPECT_EQ(batches[0].writes, 1u);
  EXPECT_FALSE(batches[1].committed);
  EXPECT_GE(batches[1].writes, 2u) << "no batch to fail as a whole";
  ASSERT_TRUE(results[0].has_value()) << results[0].error().message;
  // Every write of the failed batch failed with the storage error, the
  // refused one included if it was there; every later one went through.
  size_t storage_failures = 0;
  for (size_t i = 1; i < results.size(); ++i) {
    if (results[i]) continue;
    const ErrorCode code = results[i].error().code;
    if (code == ErrorCode::kIo || code == ErrorCode::kUnavailable) {
      ++storage_failures;
    } else {
      EXPECT_EQ(rest[i - 1].user, "nobody") << results[i].error().message;
      EXPECT_EQ(code, ErrorCode::kNotFound) << results[i].error().message;
    }
  }
  EXPECT_EQ(storage_failures, batches[1].writes);

  auto check = [&] {
    int64_t alice = 1000 - 10, bob = 1000;  // "first" went in
    size_t charged = 1;
    for (size_t i = 1; i < results.size(); ++i) {
      const ChargeRequest& r = rest[i - 1];
      if (!results[i] || results[i]->replayed) continue;
      ++charged;
      (r.user == "alice" ? alice : bob) -= 10;
      auto found = ledger_->FindReceiptByKey(r.user, r.idempotency_key);
      ASSERT_TRUE(found.has_value());
      EXPECT_TRUE(found->has_value()) << "a charge reported done is missing: " << r.idempotency_key;
    }
    for (size_t i = 1; i < results.size(); ++i) {
      const ChargeRequest& r = rest[i - 1];
      bool key_succeeded = false;
      for (size_t j = 1; j < results.size(); ++j) {
        key_succeeded |= results[j].has_value() && rest[j - 1].user == r.user &&
                         rest[j - 1].idempotency_key == r.idempotency_key;
      }
      if (!key_succeeded && r.user != "nobody") {
        EXPECT_FALSE(ledger_->FindReceiptByKey(r.user, r.idempotency_key)->has_value())
            << "a charge reported failed was recorded: " << r.idempotency_key;
      }
    }
    EXPECT_EQ(BalanceOf("alice"), alice);
    EXPECT_EQ(BalanceOf("bob"), bob);
    EXPECT_EQ(AuditSize(), audit_before + charged);
    EXPECT_TRUE(ledger_->VerifyAudit().has_value());
  };
  {
    SCOPED_TRACE("same ledger, after the failed commit");
    check();
  }
  {
    SCOPED_TRACE("after a restart");
    ReopenWith(Options());
    check();
  }

  // The callers retry with their keys: each is charged exactly once in all.
  for (size_t i = 1; i < results.size(); ++i) {
    if (rest[i - 1].user == "nobody") continue;
    auto retried = ledger_->Charge(rest[i - 1]);
    ASSERT_TRUE(retried.has_value()) << retried.error().message;
  }
  EXPECT_EQ(BalanceOf("alice"), 1000 - 10 * 7);  // first and r-0, r-2, ..., r-10
  EXPECT_EQ(BalanceOf("bob"), 1000 - 10 * 6);
  EXPECT_EQ(ledger_->Receipts("alice")->size(), 7u);
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());
}

INSTANTIATE_TEST_SUITE_P(Disk, LedgerCommitFaultTest,
                         ::testing::Values(DiskFault::kSync, DiskFault::kIoError, DiskFault::kFull),
                         [](const auto& info) {
                           switch (info.param) {
                             case DiskFault::kSync: return std::string("FsyncFails");
                             case DiskFault::kIoError: return std::string("IoError");
                             case DiskFault::kFull: return std::string("DiskFull");
                           }
                           return std::string("Unknown");
                         });

// Every read-only call, while a charge holds the write transaction open
// (its signer waits): all must finish, and see the state before the charge.
TEST_F(LedgerConcurrencyTest, ReadsDoNotWaitForAWriteInProgress) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 1000).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  auto token = ledger_->IssueToken("alice", 3600);
  ASSERT_TRUE(token.has_value());
  auto first = ledger_->Charge(MakeCharge("alice", "earlier", prog.id));
  ASSERT_TRUE(first.has_value());

  Gate gate;
  ChargeRequest held = Again(MakeCharge("alice", "held", prog.id));
  held.sign_receipt = [&](const std::string& id, int64_t, int64_t) -> Result<std::string> {
    gate.Wait();
    return "jws." + id;
  };
  std::thread writer([&] { EXPECT_TRUE(ledger_->Charge(held).has_value()); });
  ASSERT_TRUE(gate.AwaitReached());

  auto reads = std::async(std::launch::async, [&] {
    EXPECT_EQ(BalanceOf("alice"), 970);
    EXPECT_TRUE(ledger_->Authenticate("alice", "pw").has_value());
    EXPECT_TRUE(ledger_->AuthenticateToken("alice", *token).has_value());
    EXPECT_EQ(ledger_->Catalog()->size(), 1u);
    EXPECT_EQ(ledger_->FindProgram("tool", "")->id, prog.id);
    EXPECT_EQ(ledger_->ProgramById(prog.id)->name, "tool");
    EXPECT_FALSE(*ledger_->IsDeviceRevoked("dev-1"));
    EXPECT_EQ(ledger_->Devices()->size(), 1u);
    EXPECT_EQ(ledger_->Receipts("alice")->size(), 1u);
    EXPECT_TRUE(ledger_->FindReceipt(first->receipt.receipt_id).has_value());
    EXPECT_FALSE(ledger_->FindReceiptByKey("alice", "held")->has_value());
    EXPECT_TRUE(ledger_->FindOwnedReceipt("alice", prog.id)->has_value());
    EXPECT_TRUE(ledger_->CheckRedelivery({"alice", first->receipt.receipt_id, "dev-2", kPkgDigest, 3})
                    .has_value());
    EXPECT_FALSE(ledger_->AuditLog()->empty());
    EXPECT_TRUE(ledger_->VerifyAudit().has_value());
  });
  const bool finished = reads.wait_for(20s) == std::future_status::ready;
  gate.Open();  // before any assertion can return, or the writer never ends
  writer.join();
  EXPECT_TRUE(finished) << "reads waited for the write transaction";
  reads.wait();
  EXPECT_EQ(BalanceOf("alice"), 940);
  EXPECT_TRUE(ledger_->FindReceiptByKey("alice", "held")->has_value());
}

// Another process holding the write lock (with changes of its own) stops no
// reader, and none of its changes show before it commits.
TEST_F(LedgerConcurrencyTest, ReadsDoNotWaitForAnotherProcessHoldingTheWriteLock) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 1000).has_value());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &other, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE; UPDATE users SET balance = 1 WHERE name = 'alice';",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  auto reads = std::async(std::launch::async, [&] {
    EXPECT_EQ(BalanceOf("alice"), 1000);
    EXPECT_TRUE(ledger_->Authenticate("alice", "pw").has_value());
    EXPECT_TRUE(ledger_->VerifyAudit().has_value());
  });
  const bool finished = reads.wait_for(3s) == std::future_status::ready;  // under the busy timeout
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  reads.wait();
  EXPECT_TRUE(finished) << "reads waited for another connection's write lock";
  EXPECT_EQ(BalanceOf("alice"), 1000);
}

// Many readers at once, more than there are read connections, beside a
// stream of writes: every read succeeds and no balance is ever negative.
TEST_F(LedgerConcurrencyTest, ManyReadersBesideWritersAllSucceed) {
  SqliteLedgerOptions options = Options();
  options.read_connections = 2;
  ReopenWith(options);
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 200).has_value());
  auto prog = AddProgram("tool", "1.0", 10);
  std::atomic<int> read_failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 20; ++j) {
        if (i % 4 == 0) {
          auto c = ledger_->Charge(Again(MakeCharge("alice", std::to_string(i) + "-" + std::to_string(j), prog.id)));
          if (!c && c.error().code != ErrorCode::kInsufficientFunds) read_failures++;
        } else {
          auto b = ledger_->Balance("alice");
          if (!b || *b < 0) read_failures++;
          if (!ledger_->FindProgram("tool", "").has_value()) read_failures++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(read_failures.load(), 0);
  EXPECT_EQ(BalanceOf("alice"), 0);  // 80 tries at 10 each on 200: exactly 20 succeed
  EXPECT_EQ(ledger_->Receipts("alice")->size(), 20u);
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());
}

}  // namespace
}  // namespace sealdrop
