// The second path's TLS channel: contexts shared between the channels and
// copies of one identity, a change of key or chain taking effect, a bad
// identity refused, and channels of one identity made and used on several
// threads at once (make test-tsan).
#include "protocol/tls_channel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "server/testing/world.h"

namespace sealdrop {
namespace {

class TlsChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = testing::World::Create(1000);
    device_ = world_->MakeDevice({"tls-device"});
  }

  // A whole handshake between a processor and a server channel; returns the
  // server certificate's serial as the processor verified it.
  static Result<std::string> Handshake(const TlsIdentity& processor, TlsPeerPolicy client_policy,
                                       const TlsIdentity& server, TlsPeerPolicy server_policy) {
    SEALDROP_ASSIGN(auto client, MakeTlsChannel(processor, std::move(client_policy), false));
    SEALDROP_ASSIGN(auto srv, MakeTlsChannel(server, std::move(server_policy), true));
    SEALDROP_TRY(client->Start());
    for (int round = 0; round < 10 && !(client->handshake_done() && srv->handshake_done()); ++round) {
      SEALDROP_TRY(srv->Feed(client->TakeOutgoing()));
      SEALDROP_TRY(client->Feed(srv->TakeOutgoing()));
    }
    if (!client->handshake_done() || !srv->handshake_done() || !client->peer() || !srv->peer())
      return Fail(ErrorCode::kInternal, "the handshake did not finish");
    // Application data both ways, so each end's keys are really in use.
    SEALDROP_TRY(client->Write(AsBytes(std::string_view("ping"))));
    SEALDROP_TRY(srv->Feed(client->TakeOutgoing()));
    Bytes got;
    SEALDROP_TRY(srv->ReadAvailable(got, 64));
    if (AsString(got) != "ping") return Fail(ErrorCode::kInternal, "data did not arrive");
    return client->peer()->leaf.SerialHex();
  }

  Result<std::string> Handshake() {
    return Handshake(device_.identity.tls, world_->ProcessorPolicy(), world_->server.identity, world_->ServerPolicy());
  }

  std::unique_ptr<testing::World> world_;
  testing::Device device_;
};

TEST_F(TlsChannelTest, ManyChannelsOfOneIdentityAndOfItsCopiesHandshake) {
  const std::string serial = world_->server.identity.chain[0].SerialHex();
  for (int i = 0; i < 3; ++i) {
    auto s = Handshake();
    ASSERT_TRUE(s.has_value()) << s.error().message;
    EXPECT_EQ(*s, serial);
  }
  TlsIdentity copy = world_->server.identity;
  EXPECT_EQ(copy.contexts, world_->server.identity.contexts);  // a copy shares the contexts
  auto s = Handshake(device_.identity.tls, world_->ProcessorPolicy(), copy, world_->ServerPolicy());
  ASSERT_TRUE(s.has_value()) << s.error().message;
}

TEST_F(TlsChannelTest, AReplacedKeyAndCertificateAreWhatTheNextChannelPresents) {
  ASSERT_TRUE(Handshake().has_value());  // the old context is cached now
  auto [key, cert] = world_->NewServerKey("sealdropd renewed");
  world_->server.identity.chain = {cert};
  world_->server.identity.key = key;
  auto s = Handshake();
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(*s, cert.SerialHex());
}

TEST_F(TlsChannelTest, AKeyThatDoesNotMatchTheCertificateIsRefusedAndNotCached) {
  auto [key, cert] = world_->NewServerKey("sealdropd renewed");
  const EcPrivateKey old_key = *world_->server.identity.key;
  world_->server.identity.key = key;  // the old certificate with the new key
  auto bad = MakeTlsChannel(world_->server.identity, world_->ServerPolicy(), true);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  world_->server.identity.key = old_key;
  auto s = Handshake();
  ASSERT_TRUE(s.has_value()) << s.error().message;
}

TEST_F(TlsChannelTest, AnIdentityWithoutACacheStillWorks) {
  TlsIdentity uncached = world_->server.identity;
  uncached.contexts.reset();
  auto s = Handshake(device_.identity.tls, world_->ProcessorPolicy(), uncached, world_->ServerPolicy());
  ASSERT_TRUE(s.has_value()) << s.error().message;
}

TEST_F(TlsChannelTest, ARefusedPeerIsStillRefusedWithASharedContext) {
  // The verify callback finds its channel through the connection: a refusal
  // reaches the channel that made it, and a good handshake after it passes.
  testing::Device stranger = world_->MakeDevice({"tls-stranger", 365, 0, "mfr2"});
  auto refused = Handshake(stranger.identity.tls, world_->ProcessorPolicy(), world_->server.identity, world_->ServerPolicy());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kUntrustedPeer);
  ASSERT_TRUE(Handshake().has_value());
}

TEST_F(TlsChannelTest, ChannelsOfOneIdentityOnSeveralThreads) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i)
        if (!Handshake().has_value()) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace sealdrop
