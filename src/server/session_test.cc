// The three parties' state machines driven against each other in memory,
// with a real SQLite ledger and real certificates: the whole of steps
// 1001-1012, then the ways a host can misbehave.
#include <gtest/gtest.h>

#include "base/files.h"
#include "crypto/jws.h"
#include "crypto/random.h"
#include "pki/ca.h"
#include "server/login_limiter.h"
#include "server/testing/world.h"

namespace sealdrop {
namespace {
using testing::Device;
using testing::DeviceOptions;
using testing::Loop;
using testing::World;

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = World::Create();
    device_ = world_->MakeDevice({"dev-0001"});
  }
  int64_t Balance(const std::string& user = "alice") { return *world_->ledger->Balance(user); }
  bool PlaintextSeenBy(const Loop& loop) {
    Bytes pt = world_->ProgramBytes();
    std::string needle(pt.begin() + 5000, pt.begin() + 5032);
    for (const auto& b : loop.relayed)
      if (std::string(b.begin(), b.end()).find(needle) != std::string::npos) return true;
    std::string stored(loop.staging.data.begin(), loop.staging.data.end());
    return stored.find(needle) != std::string::npos;
  }

  std::unique_ptr<World> world_;
  Device device_;
};

TEST_F(SessionTest, BuyChargesOnceAndReleasesPackage) {
  Loop loop(*world_, device_);
  ASSERT_EQ(loop.Login("alice", "correct horse"), "welcome");
  auto st = loop.Buy("hello", RandomHexId(16));
  ASSERT_TRUE(st.has_value()) << st.error().message;
  EXPECT_EQ(Balance(), 900);
  ASSERT_TRUE(loop.licence.has_value());
  EXPECT_FALSE(PlaintextSeenBy(loop));
  // The receipt verifies with the server key and names alice.
  auto payload = JwsVerifyCompact(loop.host.charged().receipt,
                                  world_->server.identity.key->PublicKey(), kReceiptJwsType);
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(ParseReceiptClaims(*payload)->user, "alice");
  EXPECT_TRUE(world_->ledger->VerifyAudit().has_value());
}

TEST_F(SessionTest, RedownloadIsFree) {
  Loop loop(*world_, device_);
  loop.Login("alice", "correct horse");
  ASSERT_TRUE(loop.Buy("hello", RandomHexId(16)).has_value());
  std::string receipt = loop.host.charged().receipt;
  auto st = loop.Redownload(receipt);
  ASSERT_TRUE(st.has_value()) << st.error().message;
  EXPECT_EQ(Balance(), 900);
  EXPECT_EQ(loop.host.charged().amount, 0);
  ASSERT_TRUE(loop.licence.has_value());
}

TEST_F(SessionTest, RetriedPurchaseWithSameKeyDoesNotChargeTwice) {
  Loop loop(*world_, device_);
  loop.Login("alice", "correct horse");
  std::string key = RandomHexId(16);
  ASSERT_TRUE(loop.Buy("hello", key).has_value());
  std::string first = loop.host.charged().receipt;
  ASSERT_TRUE(loop.Buy("hello", key).has_value());  // the client crashed and retried
  EXPECT_EQ(loop.host.charged().receipt, first);
  EXPECT_EQ(Balance(), 900);
}

TEST_F(SessionTest, WrongPasswordIsRefused) {
  Loop loop(*world_, device_);
  EXPECT_EQ(loop.Login("alice", "wrong"), "error");
  EXPECT_EQ(loop.last_server_control.code, "auth_failed");
  EXPECT_FALSE(loop.Buy("hello", RandomHexId(16)).has_value());
  EXPECT_EQ(Balance(), 1000);
}

TEST_F(SessionTest, ReceiptOfAnotherUserIsRefused) {
  Loop a(*world_, device_);
  a.Login("alice", "correct horse");
  ASSERT_TRUE(a.Buy("hello", RandomHexId(16)).has_value());
  Loop b(*world_, device_);
  b.Login("bob", "battery staple");
  auto st = b.Redownload(a.host.charged().receipt);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kRefused);
}

TEST_F(SessionTest, AlteredReceiptIsRefused) {
  Loop loop(*world_, device_);
  loop.Login("alice", "correct horse");
  ASSERT_TRUE(loop.Buy("hello", RandomHexId(16)).has_value());
  std::string receipt = loop.host.charged().receipt;
  receipt[receipt.size() / 2] = receipt[receipt.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(loop.Redownload(receipt).has_value());
  EXPECT_FALSE(loop.Redownload("not.a.jws").has_value());
}

struct BadDevice {
  const char* name;
  DeviceOptions options;
};

class BadDeviceTest : public SessionTest, public ::testing::WithParamInterface<BadDevice> {};

TEST_P(BadDeviceTest, IsRefusedWithoutCharge) {
  Device bad = world_->MakeDevice(GetParam().options);
  Loop loop(*world_, bad);
  loop.Login("alice", "correct horse");
  auto st = loop.Buy("hello", RandomHexId(16));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kUntrustedPeer) << st.error().message;
  EXPECT_EQ(Balance(), 1000);
  EXPECT_FALSE(loop.licence.has_value());
  EXPECT_TRUE(loop.staging.data.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Certificates, BadDeviceTest,
    ::testing::Values(BadDevice{"OtherCa", {"dev-x", 365, 0, "mfr2"}},
                      BadDevice{"Expired", {"dev-y", 10, -20, "mfr"}},
                      BadDevice{"NotYetValid", {"dev-z", 30, 5, "mfr"}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(SessionTest, DeviceOnServerRevocationListIsRefused) {
  ASSERT_TRUE(world_->ledger->RevokeDevice("dev-0001", "cloned").has_value());
  Loop loop(*world_, device_);
  loop.Login("alice", "correct horse");
  auto st = loop.Buy("hello", RandomHexId(16));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kUntrustedPeer);
  EXPECT_EQ(Balance(), 1000);
}

TEST_F(SessionTest, DeviceRevokedByManufacturerCrlIsRefused) {
  ASSERT_TRUE(CaRevoke(world_->dir / "mfr", device_.identity_serial_hex).has_value());
  ASSERT_TRUE(world_->manufacturers.AddCrlPem(*ReadTextFile(world_->dir / "mfr" / "crl.pem", 1 << 20)).has_value());
  Loop loop(*world_, device_);
  loop.Login("alice", "correct horse");
  auto st = loop.Buy("hello", RandomHexId(16));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kUntrustedPeer);
  EXPECT_EQ(Balance(), 1000);
}

TEST_F(SessionTest, ProcessorRefusesServerFromUnpinnedVendor) {
  TrustStore other;
  ASSERT_TRUE(other.AddRootsPem(*ReadTextFile(world_->dir / "mfr2" / "ca.pem", 1 << 20)).has_value());
  world_->vendors = std::move(other);
  Loop loop(*world_, device_);
  loop.Login("alice", "correct horse");
  auto st = loop.Buy("hello", RandomHexId(16));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(Balance(), 1000);
}

// A host that tampers with the relayed inner records: every variant ends the
// order with an error, no charge, no release.
constexpr int kFirstPackageBatch = -1;  // the first batch that carries package data

struct Tamper {
  const char* name;
  bool towards_trp;
  int batch;  // which batch to touch, or kFirstPackageBatch
  enum { kFlip, kDrop, kDuplicate, kTruncate, kSwapWithNext } what;
};

class TamperTest : public SessionTest, public ::testing::WithParamInterface<Tamper> {};

TEST_P(TamperTest, EndsOrderWithoutChargeOrRelease) {
  const Tamper t = GetParam();
  // A program that spans several relayed messages, so there is package data
  // to drop, duplicate and reorder.
  world_ = World::Create(3 << 20);
  device_ = world_->MakeDevice({"dev-0001"});
  Loop loop(*world_, device_);
  loop.Login("alice", "correct horse");
  int seen = 0;
  bool touched = false;
  std::optional<Bytes> held;
  auto filter = [&](Bytes b) -> std::optional<Bytes> {
    int n = seen++;
    if (held) {  // swapped: deliver the later one first, then the held one
      Bytes both = b;
      both.insert(both.end(), held->begin(), held->end());
      held.reset();
      return both;
    }
    bool target = t.batch == kFirstPackageBatch ? (!touched && b.size() > 64 * 1024) : n == t.batch;
    if (!target) return b;
    touched = true;
    switch (t.what) {
      case Tamper::kFlip: b[b.size() / 2] ^= 0x20; return b;
      case Tamper::kDrop: return std::nullopt;
      case Tamper::kDuplicate: { Bytes d = b; d.insert(d.end(), b.begin(), b.end()); return d; }
      case Tamper::kTruncate: b.resize(b.size() / 2); return b;
      case Tamper::kSwapWithNext: held = b; return std::nullopt;
    }
    return b;
  };
  if (t.towards_trp) loop.to_trp_filter = filter; else loop.to_server_filter = filter;
  auto st = loop.Buy("hello", RandomHexId(16));
  EXPECT_TRUE(touched) << "the batch to tamper with never came";
  EXPECT_FALSE(st.has_value());
  EXPECT_EQ(Balance(), 1000);
  EXPECT_FALSE(loop.licence.has_value());
}

INSTANTIATE_TEST_SUITE_P(
    Relay, TamperTest,
    ::testing::Values(Tamper{"FlipServerHello", true, 0, Tamper::kFlip},
                      Tamper{"FlipClientHello", false, 0, Tamper::kFlip},
                      Tamper{"FlipClientFinished", false, 1, Tamper::kFlip},
                      Tamper{"FlipPackageData", true, kFirstPackageBatch, Tamper::kFlip},
                      Tamper{"DropPackageData", true, kFirstPackageBatch, Tamper::kDrop},
                      Tamper{"DuplicatePackageData", true, kFirstPackageBatch, Tamper::kDuplicate},
                      Tamper{"TruncatePackageData", true, kFirstPackageBatch, Tamper::kTruncate},
                      Tamper{"ReorderPackageData", true, kFirstPackageBatch, Tamper::kSwapWithNext},
                      Tamper{"DropServerHello", true, 0, Tamper::kDrop},
                      Tamper{"FlipReceivedConfirmation", false, 2, Tamper::kFlip}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(SessionTest, ReleaseForAnotherPackageIsRefused) {
  Loop first(*world_, device_);
  first.Login("alice", "correct horse");
  std::string old_release;
  first.release_filter = [&](std::string r) { old_release = r; return r; };
  ASSERT_TRUE(first.Buy("hello", RandomHexId(16)).has_value());
  // Bob, so the second purchase is not refused as already owned.
  Loop second(*world_, device_);
  second.Login("bob", "battery staple");
  second.release_filter = [&](std::string) { return old_release; };
  auto st = second.Buy("hello", RandomHexId(16));
  ASSERT_FALSE(st.has_value());
  EXPECT_FALSE(second.licence.has_value());
}

TEST_F(SessionTest, ForgedReleaseIsRefused) {
  Loop loop(*world_, device_);
  loop.Login("alice", "correct horse");
  auto forger = *EcPrivateKey::Generate();
  loop.release_filter = [&](std::string r) {
    auto jws = *JwsParse(r);
    return *JwsSign(forger, jws.kid, kReleaseJwsType, jws.payload);
  };
  EXPECT_FALSE(loop.Buy("hello", RandomHexId(16)).has_value());
  EXPECT_FALSE(loop.licence.has_value());
}

TEST_F(SessionTest, NoChargeMeansNoRelease) {
  Loop loop(*world_, device_);
  loop.Login("alice", "correct horse");
  loop.skip_charge = true;
  EXPECT_FALSE(loop.Buy("hello", RandomHexId(16)).has_value());
  EXPECT_EQ(Balance(), 1000);
  EXPECT_FALSE(loop.licence.has_value());
  EXPECT_EQ(loop.trp->state(), TrpSession::State::kHeld);
  EXPECT_FALSE(loop.trp->Release("a.b.c", "d.e.f").has_value());
}

TEST_F(SessionTest, ChargeBeforeDeliveryIsWrongState) {
  Loop loop(*world_, device_);
  loop.Login("alice", "correct horse");
  ControlMessage buy{.type = "purchase"};
  buy.program = "hello";
  buy.idempotency_key = RandomHexId(16);
  loop.ServerControl(EncodeControl(buy));
  auto order = loop.server.NextOutbound();
  ASSERT_TRUE(order.has_value());
  ControlMessage charge{.type = "charge"};
  charge.order_id = ParseControl(AsString(order->data))->order_id;
  loop.ServerControl(EncodeControl(charge));
  auto reply = ParseControl(AsString(loop.server.NextOutbound()->data));
  EXPECT_EQ(reply->type, "error");
  EXPECT_EQ(reply->code, "wrong_state");
  EXPECT_EQ(Balance(), 1000);
}

TEST_F(SessionTest, MessagesBeforeLoginAreRefused) {
  Loop loop(*world_, device_);
  loop.ServerControl(R"({"type":"balance"})");
  auto reply = ParseControl(AsString(loop.server.NextOutbound()->data));
  EXPECT_EQ(reply->code, "wrong_state");
  EXPECT_TRUE(loop.server.done());
}

TEST_F(SessionTest, InsufficientFundsChargesNothing) {
  ASSERT_TRUE(world_->ledger->AddUser("carol", "pw-carol-123", 10).has_value());
  Loop loop(*world_, device_);
  loop.Login("carol", "pw-carol-123");
  auto st = loop.Buy("hello", RandomHexId(16));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kInsufficientFunds);
  EXPECT_EQ(Balance("carol"), 10);
  EXPECT_FALSE(loop.licence.has_value());
  // Refused at the purchase message: no inner handshake, nothing sealed.
  EXPECT_TRUE(loop.relayed.empty());
  EXPECT_TRUE(loop.staging.data.empty());
}

// The bytes of inner records the host relayed in either direction.
size_t RelayedBytes(const Loop& loop) {
  size_t n = 0;
  for (const auto& b : loop.relayed) n += b.size();
  return n;
}

ProgramRecord AddVersion(World& world, const std::string& version) {
  ProgramRecord p = *world.ledger->FindProgram("hello", "1.0");
  p.id = 0;
  p.added_at = 0;
  p.version = version;
  return *world.ledger->AddProgram(p);
}

TEST_F(SessionTest, BuyingWhatYouOwnIsRefusedBeforeAnyHandshake) {
  Loop first(*world_, device_);
  first.Login("alice", "correct horse");
  ASSERT_TRUE(first.Buy("hello", RandomHexId(16)).has_value());
  Loop second(*world_, device_);
  second.Login("alice", "correct horse");
  auto st = second.Buy("hello", RandomHexId(16));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kAlreadyOwned);
  EXPECT_EQ(second.last_server_control.code, "already_owned");
  EXPECT_NE(second.last_server_control.message.find("sealdrop get hello"), std::string::npos);
  EXPECT_NE(second.last_server_control.message.find("--again"), std::string::npos);
  EXPECT_TRUE(second.relayed.empty());
  EXPECT_EQ(Balance(), 900);
  EXPECT_EQ(world_->ledger->Receipts("alice")->size(), 1u);
}

TEST_F(SessionTest, AgainLetsADeliberateSecondPurchaseThrough) {
  Loop first(*world_, device_);
  first.Login("alice", "correct horse");
  ASSERT_TRUE(first.Buy("hello", RandomHexId(16)).has_value());
  Loop second(*world_, device_);
  second.Login("alice", "correct horse");
  ControlMessage buy{.type = "purchase"};
  buy.program = "hello";
  buy.idempotency_key = RandomHexId(16);
  buy.again = true;
  second.ServerControl(EncodeControl(buy));
  auto reply = ParseControl(AsString(second.server.NextOutbound()->data));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->type, "order");
  EXPECT_EQ(reply->price, 100);
}

TEST_F(SessionTest, ANewerVersionIsANewPurchase) {
  Loop first(*world_, device_);
  first.Login("alice", "correct horse");
  ASSERT_TRUE(first.Buy("hello", RandomHexId(16)).has_value());
  AddVersion(*world_, "2.0");
  Loop second(*world_, device_);
  second.Login("alice", "correct horse");
  auto st = second.Buy("hello", RandomHexId(16));
  ASSERT_TRUE(st.has_value()) << st.error().message;
  EXPECT_EQ(second.host.order().version, "2.0");
  EXPECT_EQ(Balance(), 800);
}

TEST_F(SessionTest, ARetriedPaidPurchaseCompletesThePaidVersionAfterANewRelease) {
  std::string key = RandomHexId(16);
  Loop first(*world_, device_);
  first.Login("alice", "correct horse");
  ASSERT_TRUE(first.Buy("hello", key).has_value());
  AddVersion(*world_, "2.0");
  Loop retry(*world_, device_);  // the client crashed after the charge and retries with its key
  retry.Login("alice", "correct horse");
  auto st = retry.Buy("hello", key);
  ASSERT_TRUE(st.has_value()) << st.error().message;
  EXPECT_EQ(retry.host.order().version, "1.0");
  EXPECT_EQ(retry.host.order().price, 0);
  EXPECT_EQ(retry.host.charged().amount, 0);
  EXPECT_EQ(retry.host.charged().receipt, first.host.charged().receipt);
  EXPECT_EQ(Balance(), 900);
  ASSERT_TRUE(retry.licence.has_value());
  // The key names hello; it cannot buy anything else.
  Loop other(*world_, device_);
  other.Login("alice", "correct horse");
  auto wrong = other.Buy("hello-other", key);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code, ErrorCode::kRefused);
  EXPECT_TRUE(other.relayed.empty());
}

TEST_F(SessionTest, DeviceLimitIsRefusedBeforeSealing) {
  world_->server.device_limit = 1;
  Loop first(*world_, device_);
  first.Login("alice", "correct horse");
  ASSERT_TRUE(first.Buy("hello", RandomHexId(16)).has_value());
  Device second_device = world_->MakeDevice({"dev-0002"});
  Loop second(*world_, second_device);
  second.Login("alice", "correct horse");
  auto st = second.Redownload(first.host.charged().receipt);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kRefused) << st.error().message;
  // The handshake happened; the package (200000 bytes) was never sealed.
  EXPECT_LT(RelayedBytes(second), 50000u);
  EXPECT_TRUE(second.staging.data.empty());
  EXPECT_FALSE(second.licence.has_value());
}

TEST_F(SessionTest, ANonsensicalDeviceLimitRefusesOrdersBeforeAnyWork) {
  for (int limit : {0, -5, kMaxDeviceLimit + 1}) {
    world_->server.device_limit = limit;
    Loop loop(*world_, device_);
    loop.Login("alice", "correct horse");
    auto st = loop.Buy("hello", RandomHexId(16));
    ASSERT_FALSE(st.has_value());
    EXPECT_EQ(st.error().code, ErrorCode::kInternal);
    EXPECT_TRUE(loop.relayed.empty());
    EXPECT_EQ(Balance(), 1000);
  }
}

TEST_F(SessionTest, AReplacedProgramFileIsNotSoldAndNothingIsCharged) {
  Bytes other = world_->ProgramBytes();
  other[other.size() / 2] ^= 0x01;  // same size, other bytes
  std::vector<std::string> log;
  world_->server.observe = [&](std::string_view event, std::string_view detail) {
    if (event == "session_failed") log.emplace_back(detail);
  };
  ASSERT_TRUE(WriteFileAtomic(world_->program_path, other).has_value());
  Loop loop(*world_, device_);
  loop.Login("alice", "correct horse");
  auto st = loop.Buy("hello", RandomHexId(16));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(Balance(), 1000);
  EXPECT_FALSE(loop.licence.has_value());
  EXPECT_FALSE(loop.staging.finished);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("hello 1.0"), std::string::npos) << log[0];
  EXPECT_NE(log[0].find("SHA-256"), std::string::npos) << log[0];
  // The customer hears no path or digest.
  EXPECT_EQ(loop.last_server_control.message.find(world_->program_path.string()), std::string::npos);

  other.resize(other.size() - 1);  // and a truncated one
  log.clear();
  ASSERT_TRUE(WriteFileAtomic(world_->program_path, other).has_value());
  Loop again(*world_, device_);
  again.Login("alice", "correct horse");
  ASSERT_FALSE(again.Buy("hello", RandomHexId(16)).has_value());
  EXPECT_EQ(Balance(), 1000);
  EXPECT_TRUE(again.staging.data.empty());
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("bytes but was recorded as"), std::string::npos) << log[0];
}

TEST_F(SessionTest, FailedLoginsAcrossSessionsAreLimited) {
  LoginLimiter limiter({3, 100, std::chrono::seconds(600)});
  world_->server.login_limiter = &limiter;
  world_->server.peer_address = "192.0.2.1";
  for (int i = 0; i < 3; ++i) {
    Loop loop(*world_, device_);  // a new session each time
    EXPECT_EQ(loop.Login("alice", "wrong"), "error");
    EXPECT_EQ(loop.last_server_control.code, "auth_failed");
  }
  Loop limited(*world_, device_);
  EXPECT_EQ(limited.Login("alice", "correct horse"), "error");  // even the right password
  EXPECT_EQ(limited.last_server_control.code, "refused");
  Loop other(*world_, device_);
  EXPECT_EQ(other.Login("bob", "battery staple"), "welcome");
  world_->server.login_limiter = nullptr;
}

TEST_F(SessionTest, ReceiptsSurviveARenewalOfTheServerKey) {
  Loop first(*world_, device_);
  first.Login("alice", "correct horse");
  ASSERT_TRUE(first.Buy("hello", RandomHexId(16)).has_value());
  std::string receipt = first.host.charged().receipt;
  // The vendor renews the server's key and certificate.
  auto [key, cert] = world_->NewServerKey("sealdropd test");
  world_->server.identity = TlsIdentity{{cert}, key};
  Loop second(*world_, device_);
  second.Login("alice", "correct horse");
  auto st = second.Redownload(receipt);
  ASSERT_TRUE(st.has_value()) << st.error().message;
  EXPECT_EQ(Balance(), 900);
  ASSERT_TRUE(second.licence.has_value());
  // A receipt forged under the old key id is still refused: the ledger holds
  // the genuine one, byte for byte.
  std::string forged = receipt;
  forged[forged.size() - 5] = forged[forged.size() - 5] == 'A' ? 'B' : 'A';
  Loop third(*world_, device_);
  third.Login("alice", "correct horse");
  EXPECT_FALSE(third.Redownload(forged).has_value());
}

}  // namespace
}  // namespace sealdrop

namespace sealdrop {
namespace {

TEST_F(SessionTest, SessionsPerUserAreLimitedAndGivenBack) {
  KeyedSlots sessions(2);
  world_->server.user_sessions = &sessions;
  {
    Loop first(*world_, device_), second(*world_, device_);
    EXPECT_EQ(first.Login("alice", "correct horse"), "welcome");
    EXPECT_EQ(second.Login("alice", "correct horse"), "welcome");
    Loop third(*world_, device_);
    EXPECT_EQ(third.Login("alice", "correct horse"), "error");
    EXPECT_EQ(third.last_server_control.code, "unavailable");
    EXPECT_TRUE(third.server.done());
    // Another user is not affected by alice's sessions.
    Loop bob(*world_, device_);
    EXPECT_EQ(bob.Login("bob", "battery staple"), "welcome");
    EXPECT_EQ(sessions.held("alice"), 2);
  }
  // Ended sessions give their slots back.
  EXPECT_EQ(sessions.held("alice"), 0);
  EXPECT_EQ(sessions.held("bob"), 0);
  Loop again(*world_, device_);
  EXPECT_EQ(again.Login("alice", "correct horse"), "welcome");
  world_->server.user_sessions = nullptr;
}

TEST_F(SessionTest, ADeviceCertificateExpiresWhenTheClockPassesItsEnd) {
  // A device certificate valid for one day: sold to today, refused when the
  // server's clock (injected) has moved two days on, with nothing charged.
  Device short_lived = world_->MakeDevice({.serial = "dev-short", .days = 1});
  {
    Loop today(*world_, short_lived);
    today.Login("alice", "correct horse");
    ASSERT_TRUE(today.Buy("hello", RandomHexId(16)).has_value());
  }
  EXPECT_EQ(Balance(), 900);
  auto later = std::chrono::system_clock::now() + std::chrono::hours(48);
  world_->server.now = [later] { return later; };
  Loop after(*world_, short_lived);
  after.Login("bob", "battery staple");
  auto st = after.Buy("hello", RandomHexId(16));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kUntrustedPeer) << st.error().message;
  EXPECT_FALSE(after.licence.has_value());
  EXPECT_EQ(Balance("bob"), 1000);
}

TEST_F(SessionTest, LedgerWorkIsAPendingCallAndNothingElse) {
  // The session asks the ledger nothing by itself: after a message it holds
  // a pending call, and it refuses input until that call is done.
  ServerSession session(world_->server);
  ControlMessage login{.type = "login"};
  login.user = "alice";
  login.password = "correct horse";
  session.OnControl(EncodeControl(login));
  EXPECT_TRUE(session.waiting());
  EXPECT_FALSE(session.NextOutbound().has_value());
  auto call = session.TakeLedgerCall();
  ASSERT_TRUE(call.has_value());
  EXPECT_FALSE(session.TakeLedgerCall().has_value()) << "a call is handed out once";
  (*call)(*world_->ledger);
  session.OnLedgerDone();
  EXPECT_FALSE(session.waiting());
  auto welcome = session.NextOutbound();
  ASSERT_TRUE(welcome.has_value());
  EXPECT_EQ(ParseControl(AsString(welcome->data))->type, "welcome");

  // Input while a call is pending is the adapter's error and ends the session.
  session.OnControl(R"({"type":"balance"})");
  ASSERT_TRUE(session.waiting());
  session.OnControl(R"({"type":"balance"})");
  EXPECT_EQ(session.state(), ServerSession::State::kClosed);
}

}  // namespace
}  // namespace sealdrop
