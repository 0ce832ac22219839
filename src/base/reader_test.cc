#include "base/reader.h"

#include <gtest/gtest.h>

namespace sealdrop {
namespace {

TEST(Reader, ReadsBigEndianAndAdvances) {
  Bytes b = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
  Reader r(b);
  uint8_t a;
  uint16_t c;
  uint32_t d;
  ASSERT_TRUE(r.ReadU8(&a));
  ASSERT_TRUE(r.ReadU16(&c));
  ASSERT_TRUE(r.ReadU32(&d));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(c, 0x0203);
  EXPECT_EQ(d, 0x04050607u);
  EXPECT_TRUE(r.ExpectEnd("x").has_value());
}

TEST(Reader, FailedReadLeavesCursorUnchanged) {
  Bytes b = {0x01, 0x02, 0x03};
  Reader r(b);
  uint32_t d;
  EXPECT_FALSE(r.ReadU32(&d));
  EXPECT_EQ(r.remaining(), 3u);
  uint64_t e;
  EXPECT_FALSE(r.ReadU64(&e));
  EXPECT_EQ(r.remaining(), 3u);
}

TEST(Reader, PrefixedRejectsOversizedAndTruncated) {
  Writer w;
  w.U32Prefixed(ToBytes("hello"));
  Bytes good = w.Take();
  {
    Reader r(good);
    ByteView v;
    EXPECT_FALSE(r.ReadU32Prefixed(4, &v));  // above the caller's max
    EXPECT_EQ(r.remaining(), good.size());
    EXPECT_TRUE(r.ReadU32Prefixed(5, &v));
    EXPECT_EQ(AsString(v), "hello");
  }
  Bytes truncated(good.begin(), good.end() - 1);
  Reader r(truncated);
  ByteView v;
  EXPECT_FALSE(r.ReadU32Prefixed(100, &v));
  EXPECT_EQ(r.remaining(), truncated.size());
  Bytes huge = {0xff, 0xff, 0xff, 0xff, 0x00};
  Reader h(huge);
  EXPECT_FALSE(h.ReadU32Prefixed(SIZE_MAX, &v));
}

TEST(Reader, TrailingBytesAreAnError) {
  Bytes b = {0x01, 0x02};
  Reader r(b);
  uint8_t a;
  ASSERT_TRUE(r.ReadU8(&a));
  auto st = r.ExpectEnd("frame");
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kMalformed);
}

}  // namespace
}  // namespace sealdrop
