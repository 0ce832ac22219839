#include "client/progress.h"

#include <gtest/gtest.h>

namespace sealdrop {
namespace {

TEST(Progress, NeverShowsMoreThanTheTotal) {
  // The relay counts TLS framing too, so it passes the package's size.
  const uint64_t total = 200ull << 20;
  std::string line = Progress::Render("big", total + total / 500, total, 2.0);
  EXPECT_NE(line.find("100% 200.0 MiB / 200.0 MiB"), std::string::npos) << line;
  EXPECT_EQ(line.find("200.4"), std::string::npos) << line;
}

TEST(Progress, ShowsRateAndTimeLeft) {
  const uint64_t total = 100ull << 20;
  std::string line = Progress::Render("big", 25ull << 20, total, 5.0);
  EXPECT_NE(line.find(" 25%"), std::string::npos) << line;
  EXPECT_NE(line.find("5.0 MiB/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 15s"), std::string::npos) << line;
}

TEST(Progress, TimeLeftIsUnknownBeforeAnyRate) {
  EXPECT_NE(Progress::Render("x", 0, 1000, 0.0).find("ETA --"), std::string::npos);
}

TEST(Progress, DurationsReadAsClockTime) {
  EXPECT_EQ(HumanDuration(42), "42s");
  EXPECT_EQ(HumanDuration(187), "3m07s");
  EXPECT_EQ(HumanDuration(3720), "1h02m");
  EXPECT_EQ(HumanDuration(-1), "--");
}

}  // namespace
}  // namespace sealdrop
