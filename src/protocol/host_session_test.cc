#include "protocol/host_session.h"

#include <gtest/gtest.h>

#include <vector>

namespace sealdrop {
namespace {

std::vector<HostAction> Drain(HostSession& host) {
  std::vector<HostAction> out;
  while (auto a = host.NextAction()) out.push_back(std::move(*a));
  return out;
}

ControlMessage FirstControl(HostSession& host) {
  for (const HostAction& a : Drain(host))
    if (a.kind == HostAction::Kind::kControlToServer) {
      auto m = ParseControl(a.text);
      EXPECT_TRUE(m.has_value());
      return m ? *m : ControlMessage{};
    }
  ADD_FAILURE() << "no control message for the server";
  return {};
}

TEST(HostSession, PurchaseCarriesAgainOnlyWhenAsked) {
  HostSession plain;
  plain.StartPurchase("hello", "1.0", "key1");
  ControlMessage m = FirstControl(plain);
  EXPECT_EQ(m.type, "purchase");
  EXPECT_EQ(m.idempotency_key, "key1");
  EXPECT_FALSE(m.again);

  HostSession again;
  again.StartPurchase("hello", "1.0", "key2", /*again=*/true);
  EXPECT_TRUE(FirstControl(again).again);
}

// Drives a purchase to the point where the charge is queued.
void ToCharging(HostSession& host) {
  host.StartPurchase("hello", "", "key");
  Drain(host);
  ControlMessage order{.type = "order"};
  order.order_id = "o1";
  host.OnServerControl(order);
  Drain(host);
  host.OnTrpFrame(Frame{static_cast<uint8_t>(TrpType::kDownloadComplete), ToBytes("{}")});
}

TEST(HostSession, ChargeIsAnnouncedBeforeItIsSent) {
  HostSession host;
  EXPECT_EQ(host.charge(), HostSession::Charge::kNotSent);
  ToCharging(host);
  auto first = host.NextAction();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->kind, HostAction::Kind::kCharging);
  auto second = host.NextAction();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->kind, HostAction::Kind::kControlToServer);
  EXPECT_EQ(ParseControl(second->text)->type, "charge");
  EXPECT_EQ(host.charge(), HostSession::Charge::kUnanswered);
}

TEST(HostSession, AbortBeforeTheChargeIsTakenNeverSendsIt) {
  HostSession host;
  ToCharging(host);
  ASSERT_EQ(host.NextAction()->kind, HostAction::Kind::kCharging);
  host.Abort(Error{ErrorCode::kIo, "cannot keep the key"});
  EXPECT_EQ(host.state(), HostSession::State::kFailed);
  EXPECT_EQ(host.charge(), HostSession::Charge::kNotSent);
  for (const HostAction& a : Drain(host)) EXPECT_NE(a.kind, HostAction::Kind::kControlToServer);
}

TEST(HostSession, AbortAfterTheChargeWasTakenKeepsItUnanswered) {
  HostSession host;
  ToCharging(host);
  Drain(host);
  host.Abort(Error{ErrorCode::kIo, "disk full"});
  EXPECT_EQ(host.charge(), HostSession::Charge::kUnanswered);
}

TEST(HostSession, ARefusalOfTheChargeMeansNothingWasDebited) {
  HostSession host;
  ToCharging(host);
  Drain(host);
  ControlMessage refusal{.type = "error"};
  refusal.code = "insufficient_funds";
  host.OnServerControl(refusal);
  EXPECT_EQ(host.state(), HostSession::State::kFailed);
  EXPECT_EQ(host.charge(), HostSession::Charge::kRefused);
}

TEST(HostSession, AnInternalErrorAfterTheChargeMayHaveDebited) {
  HostSession host;
  ToCharging(host);
  Drain(host);
  ControlMessage failure{.type = "error"};
  failure.code = "internal";
  host.OnServerControl(failure);
  EXPECT_EQ(host.charge(), HostSession::Charge::kUnanswered);
}

TEST(HostSession, ChargedIsRecorded) {
  HostSession host;
  ToCharging(host);
  Drain(host);
  ControlMessage charged{.type = "charged"};
  charged.receipt = "r";
  charged.release = "s";
  host.OnServerControl(charged);
  EXPECT_EQ(host.charge(), HostSession::Charge::kCharged);
}

}  // namespace
}  // namespace sealdrop
