#include <gtest/gtest.h>

#include "ledger/ledger_test_fixture.h"

namespace sealdrop {
namespace {

using ledger_testing::kDigest;
using ledger_testing::kPkgDigest;
using ledger_testing::LedgerTest;

TEST_F(LedgerTest, UsersAuthenticateAndHoldBalances) {
  ASSERT_TRUE(ledger_->AddUser("alice", "s3cret pass", 100).has_value());
  EXPECT_TRUE(ledger_->Authenticate("alice", "s3cret pass").has_value());

  auto wrong = ledger_->Authenticate("alice", "guess");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code, ErrorCode::kAuthFailed);
  auto unknown = ledger_->Authenticate("mallory", "s3cret pass");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, ErrorCode::kAuthFailed);
  EXPECT_EQ(unknown.error().message, wrong.error().message);

  EXPECT_EQ(BalanceOf("alice"), 100);
  ASSERT_TRUE(ledger_->AddCredit("alice", 50).has_value());
  EXPECT_EQ(BalanceOf("alice"), 150);

  auto no_user = ledger_->Balance("mallory");
  ASSERT_FALSE(no_user.has_value());
  EXPECT_EQ(no_user.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(ledger_->AddCredit("mallory", 5).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(ledger_->AddCredit("alice", 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ledger_->AddCredit("alice", -5).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ledger_->AddCredit("alice", INT64_MAX).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(BalanceOf("alice"), 150);
}

TEST_F(LedgerTest, AddUserRefusesDuplicatesAndBadInput) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 0).has_value());
  auto dup = ledger_->AddUser("alice", "other", 10);
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, ErrorCode::kRefused);
  EXPECT_TRUE(ledger_->Authenticate("alice", "pw").has_value());
  EXPECT_EQ(BalanceOf("alice"), 0);

  EXPECT_EQ(ledger_->AddUser("", "pw", 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ledger_->AddUser("bob smith", "pw", 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ledger_->AddUser("bob\n", "pw", 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ledger_->AddUser("bob", "", 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ledger_->AddUser("bob", "pw", -1).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ledger_->Balance("bob").error().code, ErrorCode::kNotFound);
}

TEST_F(LedgerTest, CatalogAndFindProgram) {
  auto v19 = AddProgram("tool", "1.9", 10);
  auto v110 = AddProgram("tool", "1.10", 12);
  auto game = AddProgram("game", "1.0", 30);
  EXPECT_GT(v19.id, 0);
  EXPECT_NE(v19.id, v110.id);
  EXPECT_GT(v19.added_at, 0);

  auto catalog = ledger_->Catalog();
  ASSERT_TRUE(catalog.has_value());
  ASSERT_EQ(catalog->size(), 3u);
  EXPECT_EQ((*catalog)[0].name, "game");

  auto newest = ledger_->FindProgram("tool", "");
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(newest->version, "1.10");  // numeric, not string, order
  EXPECT_EQ(newest->id, v110.id);
  auto old = ledger_->FindProgram("tool", "1.9");
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->id, v19.id);
  EXPECT_EQ(old->price, 10);
  EXPECT_EQ(old->kind, "data");
  EXPECT_EQ(old->sha256, kDigest);
  EXPECT_EQ(old->size, 1234u);

  EXPECT_EQ(ledger_->FindProgram("tool", "3.0").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(ledger_->FindProgram("nothing", "").error().code, ErrorCode::kNotFound);

  auto by_id = ledger_->ProgramById(game.id);
  ASSERT_TRUE(by_id.has_value());
  EXPECT_EQ(by_id->name, "game");
  EXPECT_EQ(ledger_->ProgramById(9999).error().code, ErrorCode::kNotFound);
}

TEST_F(LedgerTest, DuplicateProgramVersionIsRefused) {
  AddProgram("tool", "1.0", 10);
  ProgramRecord p;
  p.name = "tool";
  p.version = "1.0";
  p.price = 99;
  p.kind = "elf";
  p.path = "/elsewhere";
  p.sha256 = kDigest;
  auto dup = ledger_->AddProgram(p);
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, ErrorCode::kRefused);
  EXPECT_EQ(ledger_->FindProgram("tool", "1.0")->price, 10);
}

TEST_F(LedgerTest, AddProgramValidatesFields) {
  ProgramRecord good;
  good.name = "tool";
  good.version = "1.0";
  good.kind = "elf";
  good.path = "/p";
  good.sha256 = kDigest;
  auto bad = [&](auto mutate) {
    ProgramRecord p = good;
    mutate(p);
    auto r = ledger_->AddProgram(p);
    return !r.has_value() && r.error().code == ErrorCode::kInvalidArgument;
  };
  EXPECT_TRUE(bad([](ProgramRecord& p) { p.kind = "exe"; }));
  EXPECT_TRUE(bad([](ProgramRecord& p) { p.sha256 = "ABCD"; }));
  EXPECT_TRUE(bad([](ProgramRecord& p) { p.price = -1; }));
  EXPECT_TRUE(bad([](ProgramRecord& p) { p.name = ""; }));
  EXPECT_TRUE(bad([](ProgramRecord& p) { p.version = ""; }));
  EXPECT_TRUE(bad([](ProgramRecord& p) { p.path = ""; }));
  EXPECT_TRUE(bad([](ProgramRecord& p) { p.size = UINT64_MAX; }));
  EXPECT_TRUE(ledger_->AddProgram(good).has_value());
}

TEST_F(LedgerTest, ChargeDebitsOnceAndReplaysTheSameReceipt) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  auto prog = AddProgram("tool", "1.0", 30);

  auto first = ledger_->Charge(MakeCharge("alice", "order-1", prog.id));
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_FALSE(first->replayed);
  EXPECT_EQ(first->balance_after, 70);
  EXPECT_EQ(first->receipt.amount, 30);
  EXPECT_EQ(first->receipt.user, "alice");
  EXPECT_EQ(first->receipt.program_name, "tool");
  EXPECT_EQ(first->receipt.program_version, "1.0");
  EXPECT_EQ(first->receipt.device_serial, "dev-1");
  EXPECT_EQ(first->receipt.receipt_id.size(), 32u);
  EXPECT_EQ(first->receipt.jws, "jws." + first->receipt.receipt_id + "." +
                                    std::to_string(first->receipt.issued_at));
  EXPECT_EQ(BalanceOf("alice"), 70);

  // A retry carries different details; the stored receipt wins and the
  // signer is never asked again.
  ChargeRequest retry = MakeCharge("alice", "order-1", prog.id, "dev-2");
  retry.sign_receipt = [](const std::string&, int64_t, int64_t) -> Result<std::string> {
    ADD_FAILURE() << "signer called on replay";
    return "x";
  };
  auto again = ledger_->Charge(retry);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->receipt.receipt_id, first->receipt.receipt_id);
  EXPECT_EQ(again->receipt.jws, first->receipt.jws);
  EXPECT_EQ(again->receipt.device_serial, "dev-1");
  EXPECT_EQ(again->balance_after, 70);
  EXPECT_EQ(BalanceOf("alice"), 70);

  // A new key for the version she owns is refused, unless she asks for a
  // second licence on purpose.
  auto owned = ledger_->Charge(MakeCharge("alice", "order-2", prog.id));
  ASSERT_FALSE(owned.has_value());
  EXPECT_EQ(owned.error().code, ErrorCode::kAlreadyOwned);
  EXPECT_NE(owned.error().message.find("sealdrop get tool"), std::string::npos);
  EXPECT_EQ(BalanceOf("alice"), 70);
  ChargeRequest deliberate = MakeCharge("alice", "order-2", prog.id);
  deliberate.again = true;
  auto second = ledger_->Charge(deliberate);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_FALSE(second->replayed);
  EXPECT_NE(second->receipt.receipt_id, first->receipt.receipt_id);
  EXPECT_EQ(BalanceOf("alice"), 40);

  auto receipts = ledger_->Receipts("alice");
  ASSERT_TRUE(receipts.has_value());
  EXPECT_EQ(receipts->size(), 2u);
  auto found = ledger_->FindReceipt(first->receipt.receipt_id);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->jws, first->receipt.jws);
  EXPECT_EQ(ledger_->FindReceipt("nope").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(ledger_->Receipts("nobody")->empty());
}

TEST_F(LedgerTest, IdempotencyKeysAreScopedPerUser) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  ASSERT_TRUE(ledger_->AddUser("bob", "pw", 100).has_value());
  auto prog = AddProgram("tool", "1.0", 10);
  auto a = ledger_->Charge(MakeCharge("alice", "k", prog.id));
  auto b = ledger_->Charge(MakeCharge("bob", "k", prog.id));
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_FALSE(b->replayed);
  EXPECT_NE(a->receipt.receipt_id, b->receipt.receipt_id);
  EXPECT_EQ(BalanceOf("alice"), 90);
  EXPECT_EQ(BalanceOf("bob"), 90);
}

TEST_F(LedgerTest, InsufficientFundsChangesNothing) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 20).has_value());
  auto prog = AddProgram("game", "2.0", 30);
  size_t audit_before = AuditSize();
  auto r = ledger_->Charge(MakeCharge("alice", "order-1", prog.id));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInsufficientFunds);
  EXPECT_NE(r.error().message.find("20"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("30"), std::string::npos) << r.error().message;
  EXPECT_EQ(BalanceOf("alice"), 20);
  EXPECT_TRUE(ledger_->Receipts("alice")->empty());
  EXPECT_EQ(AuditSize(), audit_before);

  // The key was not consumed: after topping up, the same order goes through.
  ASSERT_TRUE(ledger_->AddCredit("alice", 10).has_value());
  auto ok = ledger_->Charge(MakeCharge("alice", "order-1", prog.id));
  ASSERT_TRUE(ok.has_value());
  EXPECT_FALSE(ok->replayed);
  EXPECT_EQ(BalanceOf("alice"), 0);
}

TEST_F(LedgerTest, SignerFailureRollsBackEverything) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  size_t audit_before = AuditSize();

  ChargeRequest req = MakeCharge("alice", "order-1", prog.id);
  req.sign_receipt = [](const std::string&, int64_t, int64_t) -> Result<std::string> {
    return Fail(ErrorCode::kInternal, "signing key unavailable");
  };
  auto failed = ledger_->Charge(req);
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, ErrorCode::kInternal);
  EXPECT_NE(failed.error().message.find("signing key unavailable"), std::string::npos);

  ChargeRequest throws = MakeCharge("alice", "order-1", prog.id);
  throws.sign_receipt = [](const std::string&, int64_t, int64_t) -> Result<std::string> {
    throw std::runtime_error("boom");
  };
  EXPECT_FALSE(ledger_->Charge(throws).has_value());

  ChargeRequest no_signer = MakeCharge("alice", "order-1", prog.id);
  no_signer.sign_receipt = nullptr;
  EXPECT_FALSE(ledger_->Charge(no_signer).has_value());

  EXPECT_EQ(BalanceOf("alice"), 100);
  EXPECT_TRUE(ledger_->Receipts("alice")->empty());
  EXPECT_EQ(AuditSize(), audit_before);
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());

  auto ok = ledger_->Charge(MakeCharge("alice", "order-1", prog.id));
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_FALSE(ok->replayed);
  EXPECT_EQ(BalanceOf("alice"), 70);
}

TEST_F(LedgerTest, ChargeRefusesUnknownUserProgramAndRevokedDevice) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  EXPECT_EQ(ledger_->Charge(MakeCharge("mallory", "k", prog.id)).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(ledger_->Charge(MakeCharge("alice", "k", 4242)).error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(ledger_->RevokeDevice("dev-bad", "cloned").has_value());
  EXPECT_EQ(ledger_->Charge(MakeCharge("alice", "k", prog.id, "dev-bad")).error().code,
            ErrorCode::kRefused);
  ChargeRequest bad_digest = MakeCharge("alice", "k", prog.id);
  bad_digest.package_digest = "xyz";
  EXPECT_EQ(ledger_->Charge(bad_digest).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ledger_->Charge(MakeCharge("alice", "", prog.id)).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(BalanceOf("alice"), 100);
}

TEST_F(LedgerTest, RedeliveryIsForTheOwnerWithinTheDeviceLimit) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  ASSERT_TRUE(ledger_->AddUser("bob", "pw", 100).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  auto charged = ledger_->Charge(MakeCharge("alice", "order-1", prog.id, "dev-1"));
  ASSERT_TRUE(charged.has_value());
  const std::string id = charged->receipt.receipt_id;

  auto deliver = [&](const std::string& user, const std::string& receipt,
                     const std::string& serial, int limit) {
    DeliveryRequest d;
    d.user = user;
    d.receipt_id = receipt;
    d.device_serial = serial;
    d.package_digest = kPkgDigest;
    d.device_limit = limit;
    return ledger_->RecordRedelivery(d);
  };

  EXPECT_TRUE(deliver("alice", id, "dev-1", 2).has_value());  // same device again
  EXPECT_TRUE(deliver("alice", id, "dev-2", 2).has_value());  // second device
  auto over = deliver("alice", id, "dev-3", 2);
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code, ErrorCode::kRefused);
  EXPECT_NE(over.error().message.find("this receipt has reached its limit of 2 devices"),
            std::string::npos)
      << over.error().message;
  EXPECT_TRUE(deliver("alice", id, "dev-2", 2).has_value());  // known devices still work
  EXPECT_TRUE(deliver("alice", id, "dev-3", 3).has_value());  // a higher limit admits it

  auto not_yours = deliver("bob", id, "dev-9", 3);
  auto unknown = deliver("alice", "0123456789abcdef", "dev-1", 3);
  ASSERT_FALSE(not_yours.has_value());
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(not_yours.error().code, unknown.error().code);
  // Same wording for both, so probing receipt ids tells nothing.
  auto strip = [](std::string m, const std::string& rid) {
    return m.replace(m.find(rid), rid.size(), "ID");
  };
  EXPECT_EQ(strip(not_yours.error().message, id),
            strip(unknown.error().message, "0123456789abcdef"));

  ASSERT_TRUE(ledger_->RevokeDevice("dev-2", "cloned").has_value());
  EXPECT_EQ(deliver("alice", id, "dev-2", 3).error().code, ErrorCode::kRefused);
  EXPECT_EQ(deliver("alice", id, "dev-1", 0).error().code, ErrorCode::kInvalidArgument);

  EXPECT_EQ(BalanceOf("alice"), 70);  // redelivery never charges
  EXPECT_TRUE(ledger_->VerifyAudit().has_value());
}

TEST_F(LedgerTest, RevokedDevices) {
  auto before = ledger_->IsDeviceRevoked("dev-1");
  ASSERT_TRUE(before.has_value());
  EXPECT_FALSE(*before);
  size_t audit_before = AuditSize();
  ASSERT_TRUE(ledger_->RevokeDevice("dev-1", "key extracted").has_value());
  EXPECT_TRUE(*ledger_->IsDeviceRevoked("dev-1"));
  EXPECT_FALSE(*ledger_->IsDeviceRevoked("dev-2"));
  auto twice = ledger_->RevokeDevice("dev-1", "again");
  ASSERT_TRUE(twice.has_value());
  EXPECT_TRUE(twice->already_revoked);
  EXPECT_EQ(twice->device.revoke_reason, "key extracted");  // the first reason stands
  EXPECT_EQ(twice->device.deliveries, 0);                   // never seen
  EXPECT_EQ(AuditSize(), audit_before + 1);
  EXPECT_EQ(ledger_->RevokeDevice("", "x").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ledger_->RevokeDevice("dev-3", std::string("\xff\xfe")).error().code,
            ErrorCode::kInvalidArgument);
}

TEST_F(LedgerTest, TheReceiptSignsTheAmountTheTransactionDebits) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  // The order was taken at 30; the price changes before the charge.
  ASSERT_EQ(ledger_testing::RawExec(path_, "UPDATE programs SET price = 45 WHERE id = " + std::to_string(prog.id)), "");
  ChargeRequest r = MakeCharge("alice", "order-1", prog.id);
  int64_t signed_amount = -1;
  r.sign_receipt = [&](const std::string& id, int64_t, int64_t amount) -> Result<std::string> {
    signed_amount = amount;
    return "jws." + id;
  };
  auto charged = ledger_->Charge(r);
  ASSERT_TRUE(charged.has_value()) << charged.error().message;
  EXPECT_EQ(charged->receipt.amount, 45);
  EXPECT_EQ(signed_amount, 45);
  EXPECT_EQ(BalanceOf("alice"), 55);
}

TEST_F(LedgerTest, OwnershipAndIdempotencyLookups) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  ASSERT_TRUE(ledger_->AddUser("bob", "pw", 100).has_value());
  auto v1 = AddProgram("tool", "1.0", 30);
  auto v2 = AddProgram("tool", "2.0", 30);
  EXPECT_FALSE(ledger_->FindOwnedReceipt("alice", v1.id)->has_value());
  auto charged = ledger_->Charge(MakeCharge("alice", "order-1", v1.id));
  ASSERT_TRUE(charged.has_value());
  auto owned = ledger_->FindOwnedReceipt("alice", v1.id);
  ASSERT_TRUE(owned.has_value() && owned->has_value());
  EXPECT_EQ((*owned)->receipt_id, charged->receipt.receipt_id);
  EXPECT_FALSE(ledger_->FindOwnedReceipt("alice", v2.id)->has_value());  // a newer version is new
  EXPECT_FALSE(ledger_->FindOwnedReceipt("bob", v1.id)->has_value());
  auto by_key = ledger_->FindReceiptByKey("alice", "order-1");
  ASSERT_TRUE(by_key.has_value() && by_key->has_value());
  EXPECT_EQ((*by_key)->program_id, v1.id);
  EXPECT_FALSE(ledger_->FindReceiptByKey("bob", "order-1")->has_value());  // keys are per user
  EXPECT_FALSE(ledger_->FindReceiptByKey("alice", "order-2")->has_value());
  // The newer version is a purchase like any other.
  EXPECT_TRUE(ledger_->Charge(MakeCharge("alice", "order-2", v2.id)).has_value());
  EXPECT_EQ(BalanceOf("alice"), 40);
}

TEST_F(LedgerTest, DevicesListsSeenAndRevokedSerials) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  auto charged = ledger_->Charge(MakeCharge("alice", "order-1", prog.id, "dev-1"));
  ASSERT_TRUE(charged.has_value());
  DeliveryRequest again{"alice", charged->receipt.receipt_id, "dev-1", kPkgDigest, 3};
  ASSERT_TRUE(ledger_->RecordRedelivery(again).has_value());
  auto fresh = ledger_->RevokeDevice("dev-unseen", "reported cloned");
  ASSERT_TRUE(fresh.has_value());
  EXPECT_FALSE(fresh->already_revoked);
  EXPECT_EQ(fresh->device.deliveries, 0);
  EXPECT_GT(fresh->device.revoked_at, 0);
  auto devices = ledger_->Devices();
  ASSERT_TRUE(devices.has_value());
  ASSERT_EQ(devices->size(), 2u);
  const DeviceRecord& seen = (*devices)[0];
  EXPECT_EQ(seen.serial, "dev-1");
  EXPECT_EQ(seen.receipts, 1);
  EXPECT_EQ(seen.deliveries, 2);
  EXPECT_GT(seen.first_seen, 0);
  EXPECT_GE(seen.last_seen, seen.first_seen);
  EXPECT_FALSE(seen.revoked);
  EXPECT_EQ((*devices)[1].serial, "dev-unseen");
  EXPECT_TRUE((*devices)[1].revoked);
  EXPECT_EQ((*devices)[1].revoke_reason, "reported cloned");
}

TEST_F(LedgerTest, CheckRedeliveryRefusesWhatRecordRedeliveryWouldAndWritesNothing) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw", 100).has_value());
  auto prog = AddProgram("tool", "1.0", 30);
  auto charged = ledger_->Charge(MakeCharge("alice", "order-1", prog.id, "dev-1"));
  ASSERT_TRUE(charged.has_value());
  const std::string id = charged->receipt.receipt_id;
  size_t audit = AuditSize();
  EXPECT_TRUE(ledger_->CheckRedelivery({"alice", id, "dev-2", kPkgDigest, 2}).has_value());
  EXPECT_EQ(ledger_->CheckRedelivery({"alice", id, "dev-2", kPkgDigest, 1}).error().code,
            ErrorCode::kRefused);  // the limit is reached by dev-1 alone
  EXPECT_TRUE(ledger_->CheckRedelivery({"alice", id, "dev-1", kPkgDigest, 1}).has_value());
  EXPECT_EQ(ledger_->CheckRedelivery({"bob", id, "dev-1", kPkgDigest, 3}).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(ledger_->CheckRedelivery({"alice", id, "dev-1", kPkgDigest, 0}).error().code,
            ErrorCode::kInvalidArgument);
  ASSERT_TRUE(ledger_->RevokeDevice("dev-2", "cloned").has_value());
  EXPECT_EQ(ledger_->CheckRedelivery({"alice", id, "dev-2", kPkgDigest, 3}).error().code,
            ErrorCode::kRefused);
  EXPECT_EQ(AuditSize(), audit + 1);  // the revocation only
}

TEST_F(LedgerTest, TokensLogInUntilTheyExpire) {
  ASSERT_TRUE(ledger_->AddUser("alice", "pw-alice-1", 10).has_value());
  ASSERT_TRUE(ledger_->AddUser("bob", "pw-bob-1", 10).has_value());
  auto token = ledger_->IssueToken("alice", 3600);
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->size(), 64u);
  EXPECT_TRUE(ledger_->AuthenticateToken("alice", *token).has_value());
  EXPECT_EQ(ledger_->AuthenticateToken("bob", *token).error().code, ErrorCode::kAuthFailed);
  std::string flipped = *token;
  flipped[0] = flipped[0] == 'a' ? 'b' : 'a';
  EXPECT_EQ(ledger_->AuthenticateToken("alice", flipped).error().code, ErrorCode::kAuthFailed);
  EXPECT_EQ(ledger_->AuthenticateToken("alice", "").error().code, ErrorCode::kAuthFailed);
  EXPECT_FALSE(ledger_->IssueToken("nobody", 3600).has_value());
  EXPECT_FALSE(ledger_->IssueToken("alice", 0).has_value());
  // Survives a reopen: the token is in the database, as a hash only.
  Reopen(false);
  EXPECT_TRUE(ledger_->AuthenticateToken("alice", *token).has_value());
}

}  // namespace
}  // namespace sealdrop
