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

namespace sealdrop {
namespace {

TEST(Reader, SkipAndCString) {
  Bytes b = {'a', 'b', 0, 'c', 0, 'd'};
  Reader r(b);
  std::string_view s;
  ASSERT_TRUE(r.ReadCString(&s));
  EXPECT_EQ(s, "ab");
  ASSERT_TRUE(r.Skip(1));
  ASSERT_TRUE(r.ReadCString(&s));
  EXPECT_EQ(s, "");
  // No NUL left: fails, cursor unchanged.
  EXPECT_FALSE(r.ReadCString(&s));
  EXPECT_EQ(r.remaining(), 1u);
  EXPECT_FALSE(r.Skip(2));
  EXPECT_EQ(r.remaining(), 1u);
  Reader empty(ByteView{});
  EXPECT_FALSE(empty.ReadCString(&s));
}

TEST(Reader, PrefixedInReportsRangeBeforeTheBody) {
  // Length 0x00010000 announced, body absent: out of range for max 100 at
  // once, incomplete for a larger max.
  Bytes head = {0x00, 0x01, 0x00, 0x00, 'x'};
  ByteView out;
  uint32_t len = 0;
  Reader r(head);
  EXPECT_EQ(r.ReadU32PrefixedIn(1, 100, &out, &len), Reader::Prefixed::kOutOfRange);
  EXPECT_EQ(len, 0x10000u);
  EXPECT_EQ(r.remaining(), head.size());
  EXPECT_EQ(r.ReadU32PrefixedIn(1, 1 << 20, &out), Reader::Prefixed::kIncomplete);
  EXPECT_EQ(r.remaining(), head.size());
  Bytes zero = {0, 0, 0, 0};
  Reader z(zero);
  EXPECT_EQ(z.ReadU32PrefixedIn(1, 10, &out), Reader::Prefixed::kOutOfRange);
  EXPECT_EQ(z.ReadU32PrefixedIn(0, 10, &out), Reader::Prefixed::kOk);
  EXPECT_TRUE(z.empty());
  Bytes two = {0, 0, 0, 2, 'h', 'i', '!'};
  Reader t(two);
  ASSERT_EQ(t.ReadU32PrefixedIn(1, 2, &out), Reader::Prefixed::kOk);
  EXPECT_EQ(AsString(out), "hi");
  EXPECT_EQ(t.remaining(), 1u);
  Bytes short_len = {0, 0};
  Reader s(short_len);
  EXPECT_EQ(s.ReadU32PrefixedIn(0, 10, &out), Reader::Prefixed::kIncomplete);
}

TEST(Reader, ReadRawCopiesAsStored) {
  struct Pair {
    uint16_t a;
    uint16_t b;
  };
  Bytes b = {0x01, 0x02, 0x03, 0x04, 0x05};
  Reader r(b);
  Pair p{};
  ASSERT_TRUE(r.ReadRaw(&p));
  uint16_t want_a, want_b;
  std::memcpy(&want_a, b.data(), 2);
  std::memcpy(&want_b, b.data() + 2, 2);
  EXPECT_EQ(p.a, want_a);
  EXPECT_EQ(p.b, want_b);
  EXPECT_FALSE(r.ReadRaw(&p));
  EXPECT_EQ(r.remaining(), 1u);
}

TEST(Reader, SliceAtChecksWithoutOverflow) {
  Bytes b(16, 7);
  ByteView out;
  ASSERT_TRUE(SliceAt(b, 4, 12, &out));
  EXPECT_EQ(out.size(), 12u);
  EXPECT_EQ(out.data(), b.data() + 4);
  EXPECT_TRUE(SliceAt(b, 16, 0, &out));
  EXPECT_FALSE(SliceAt(b, 4, 13, &out));
  EXPECT_FALSE(SliceAt(b, 17, 0, &out));
  EXPECT_FALSE(SliceAt(b, 8, UINT64_MAX, &out));
  EXPECT_FALSE(SliceAt(b, UINT64_MAX, 2, &out));
}

}  // namespace
}  // namespace sealdrop
