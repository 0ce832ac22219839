#include "server/login_limiter.h"

#include <gtest/gtest.h>

namespace sealdrop {
namespace {
using namespace std::chrono_literals;

TEST(LoginLimiter, UserLimitHoldsAcrossAddressesUntilTheWindowPasses) {
  LoginLimiter limiter({3, 100, 60s});
  auto t = LoginLimiter::Clock::now();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limiter.Check("alice", "10.0.0." + std::to_string(i), t).has_value());
    limiter.RecordFailure("alice", "10.0.0." + std::to_string(i), t);
  }
  auto refused = limiter.Check("alice", "10.0.0.9", t + 1s);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kRefused);
  EXPECT_NE(refused.error().message.find("try again in 1 minute"), std::string::npos);
  EXPECT_TRUE(limiter.Check("bob", "10.0.0.9", t + 1s).has_value());  // others unaffected
  EXPECT_TRUE(limiter.Check("alice", "10.0.0.9", t + 61s).has_value());  // window passed
}

TEST(LoginLimiter, AddressLimitCoversEveryUser) {
  LoginLimiter limiter({100, 4, 60s});
  auto t = LoginLimiter::Clock::now();
  for (int i = 0; i < 4; ++i) limiter.RecordFailure("user" + std::to_string(i), "198.51.100.7", t);
  EXPECT_FALSE(limiter.Check("someone-else", "198.51.100.7", t).has_value());
  EXPECT_TRUE(limiter.Check("someone-else", "198.51.100.8", t).has_value());
}

TEST(LoginLimiter, SuccessClearsTheUserButNotTheAddress) {
  LoginLimiter limiter({2, 3, 60s});
  auto t = LoginLimiter::Clock::now();
  limiter.RecordFailure("alice", "a", t);
  limiter.RecordSuccess("alice");
  limiter.RecordFailure("alice", "a", t);
  EXPECT_TRUE(limiter.Check("alice", "b", t).has_value());  // one failure since the success
  limiter.RecordFailure("alice", "a", t);
  EXPECT_FALSE(limiter.Check("alice", "b", t).has_value());
  EXPECT_FALSE(limiter.Check("carol", "a", t).has_value());  // address: 3 failures
}

TEST(LoginLimiter, TablesStayBounded) {
  LoginLimiter limiter({1, 1, 60s, 100});
  auto t = LoginLimiter::Clock::now();
  for (int i = 0; i < 10000; ++i)
    limiter.RecordFailure("u" + std::to_string(i), "a" + std::to_string(i), t + std::chrono::milliseconds(i));
  // The newest are remembered, the oldest were dropped to stay within bounds.
  EXPECT_FALSE(limiter.Check("u9999", "", t + 10s).has_value());
  EXPECT_TRUE(limiter.Check("u0", "", t + 10s).has_value());
}

}  // namespace
}  // namespace sealdrop
