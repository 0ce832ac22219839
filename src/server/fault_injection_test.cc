// Disk faults at every ledger write of a purchase: the Nth write (or sync)
// fails with "disk full", an I/O error or a failed fsync, for every N a
// purchase makes. After each, the server "restarts" (the ledger is reopened
// from disk) and the invariants must hold:
//   - the balance was debited exactly when a receipt exists, once;
//   - a receipt that exists re-downloads at no charge;
//   - the processor released the package only if a receipt exists;
//   - the audit chain verifies;
//   - retrying the purchase with the same idempotency key charges at most once
//     in all.
// The fault VFS (src/ledger/testing/fault_vfs.h) is SQLite's default VFS in
// this test binary, so the product's ledger code runs unchanged.
#include <gtest/gtest.h>

#include "crypto/random.h"
#include "ledger/sqlite_ledger.h"
#include "ledger/testing/fault_vfs.h"
#include "server/testing/world.h"

namespace sealdrop {
namespace {
using testing::DiskFault;
using testing::FaultVfs;
using testing::Loop;
using testing::World;

constexpr int64_t kStart = 1000;
constexpr int64_t kPrice = 100;

struct Outcome {
  bool fired = false;
};

void Reopen(World& w) {
  w.ledger.reset();
  auto reopened = OpenSqliteLedger(w.dir / "ledger.db", false);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().message;
  w.ledger = std::move(*reopened);
}

// One purchase with the fault armed at the (skip+1)th matching operation.
Outcome PurchaseWithFault(DiskFault fault, uint64_t skip) {
  Outcome out;
  auto world = World::Create(20000);
  auto device = world->MakeDevice({"dev-0001"});
  const std::string key = RandomHexId(16);
  bool released = false;
  {
    Loop loop(*world, device);
    EXPECT_EQ(loop.Login("alice", "correct horse"), "welcome");
    FaultVfs::Arm(fault, skip);
    auto st = loop.Buy("hello", key);
    out.fired = FaultVfs::Fired();
    FaultVfs::Disarm();
    released = loop.licence.has_value();
    if (!out.fired) {
      EXPECT_TRUE(st.has_value()) << st.error().message;
    }
  }
  Reopen(*world);
  SCOPED_TRACE("after the fault and a restart");
  auto receipts = world->ledger->Receipts("alice");
  EXPECT_TRUE(receipts.has_value());
  const size_t n = receipts ? receipts->size() : 99;
  EXPECT_LE(n, 1u);
  EXPECT_EQ(*world->ledger->Balance("alice"), kStart - kPrice * static_cast<int64_t>(n))
      << "debited without a receipt, or a receipt without a debit";
  if (released) {
    EXPECT_EQ(n, 1u) << "the package was released without a receipt";
  }
  EXPECT_TRUE(world->ledger->VerifyAudit().has_value());
  if (n == 1) {
    Loop again(*world, device);
    again.Login("alice", "correct horse");
    auto st = again.Redownload((*receipts)[0].jws);
    EXPECT_TRUE(st.has_value()) << "the receipt does not re-download: " << st.error().message;
    EXPECT_TRUE(again.licence.has_value());
  }
  // The client retries the purchase with its stored idempotency key.
  {
    Loop retry(*world, device);
    retry.Login("alice", "correct horse");
    auto st = retry.Buy("hello", key);
    EXPECT_TRUE(st.has_value()) << "the retried purchase fails: " << st.error().message;
    EXPECT_TRUE(retry.licence.has_value());
  }
  EXPECT_EQ(*world->ledger->Balance("alice"), kStart - kPrice) << "charged twice, or not at all, in all";
  EXPECT_EQ(world->ledger->Receipts("alice")->size(), 1u);
  EXPECT_TRUE(world->ledger->VerifyAudit().has_value());
  return out;
}

class FaultInjection : public ::testing::TestWithParam<DiskFault> {};

TEST_P(FaultInjection, EveryWriteOfAPurchase) {
  FaultVfs::Install();
  uint64_t points = 0;
  for (uint64_t skip = 0; skip < 200; ++skip) {
    SCOPED_TRACE("fault at operation " + std::to_string(skip + 1));
    Outcome o = PurchaseWithFault(GetParam(), skip);
    if (HasFailure()) return;
    if (!o.fired) break;  // past the purchase's last write
    ++points;
  }
  // An empty matrix would prove nothing. A purchase is one transaction: many
  // page writes, one WAL sync (synchronous=FULL).
  EXPECT_GE(points, GetParam() == DiskFault::kSync ? 1u : 2u);
  std::cout << "[ fault points tested: " << points << " ]\n";
}

// A fault during a re-download: never a debit, and the receipt still works.
TEST_P(FaultInjection, EveryWriteOfARedownload) {
  FaultVfs::Install();
  uint64_t points = 0;
  for (uint64_t skip = 0; skip < 200; ++skip) {
    SCOPED_TRACE("fault at operation " + std::to_string(skip + 1));
    auto world = World::Create(20000);
    auto device = world->MakeDevice({"dev-0001"});
    std::string receipt;
    {
      Loop buy(*world, device);
      buy.Login("alice", "correct horse");
      ASSERT_TRUE(buy.Buy("hello", RandomHexId(16)).has_value());
      receipt = buy.host.charged().receipt;
    }
    bool fired = false;
    {
      Loop again(*world, device);
      again.Login("alice", "correct horse");
      FaultVfs::Arm(GetParam(), skip);
      (void)again.Redownload(receipt);
      fired = FaultVfs::Fired();
      FaultVfs::Disarm();
    }
    Reopen(*world);
    EXPECT_EQ(*world->ledger->Balance("alice"), kStart - kPrice);
    EXPECT_TRUE(world->ledger->VerifyAudit().has_value());
    Loop retry(*world, device);
    retry.Login("alice", "correct horse");
    auto st = retry.Redownload(receipt);
    EXPECT_TRUE(st.has_value()) << st.error().message;
    EXPECT_EQ(*world->ledger->Balance("alice"), kStart - kPrice);
    if (HasFailure() || !fired) break;
    ++points;
  }
  EXPECT_GE(points, 1u);
  std::cout << "[ fault points tested: " << points << " ]\n";
}

INSTANTIATE_TEST_SUITE_P(Disk, FaultInjection,
                         ::testing::Values(DiskFault::kFull, DiskFault::kIoError, DiskFault::kSync),
                         [](const auto& info) {
                           switch (info.param) {
                             case DiskFault::kFull: return std::string("DiskFull");
                             case DiskFault::kIoError: return std::string("IoError");
                             case DiskFault::kSync: return std::string("FsyncFails");
                           }
                           return std::string("Unknown");
                         });

}  // namespace
}  // namespace sealdrop
