#include "ledger/version_order.h"

#include <gtest/gtest.h>

namespace sealdrop {
namespace {

TEST(VersionOrder, NumbersCompareNumerically) {
  EXPECT_GT(CompareVersions("1.10", "1.9"), 0);
  EXPECT_LT(CompareVersions("1.9", "1.10"), 0);
  EXPECT_GT(CompareVersions("2.0", "1.99.99"), 0);
  EXPECT_EQ(CompareVersions("1.010", "1.10"), 0);
  EXPECT_GT(CompareVersions("100000000000000000000000", "99999999999999999999999"), 0);
}

TEST(VersionOrder, LongerWinsOnCommonPrefix) {
  EXPECT_GT(CompareVersions("1.0.1", "1.0"), 0);
  EXPECT_LT(CompareVersions("1.0", "1.0.1"), 0);
  EXPECT_EQ(CompareVersions("1.0", "1.0"), 0);
  EXPECT_EQ(CompareVersions("1.0", "1-0"), 0);  // separators only split
  EXPECT_EQ(CompareVersions("", ""), 0);
}

TEST(VersionOrder, WordsCompareBytewiseAndLoseToNumbers) {
  EXPECT_GT(CompareVersions("1.0-rc2", "1.0-rc1"), 0);
  EXPECT_GT(CompareVersions("1.0.1", "1.0.beta"), 0);
  EXPECT_LT(CompareVersions("alpha", "beta"), 0);
}

}  // namespace
}  // namespace sealdrop
