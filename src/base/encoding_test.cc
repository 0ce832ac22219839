#include "base/encoding.h"

#include <gtest/gtest.h>

namespace sealdrop {
namespace {

TEST(Base64Url, Rfc4648Vectors) {
  // RFC 4648 section 10, in the url alphabet without padding.
  EXPECT_EQ(Base64UrlEncode(AsBytes("")), "");
  EXPECT_EQ(Base64UrlEncode(AsBytes("f")), "Zg");
  EXPECT_EQ(Base64UrlEncode(AsBytes("fo")), "Zm8");
  EXPECT_EQ(Base64UrlEncode(AsBytes("foo")), "Zm9v");
  EXPECT_EQ(Base64UrlEncode(AsBytes("foob")), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode(AsBytes("fooba")), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode(AsBytes("foobar")), "Zm9vYmFy");
  Bytes special = {0xfb, 0xff};
  EXPECT_EQ(Base64UrlEncode(special), "-_8");
}

TEST(Base64Url, RoundTripsAllLengths) {
  Bytes b;
  for (int i = 0; i < 70; ++i) {
    auto d = Base64UrlDecode(Base64UrlEncode(b));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, b);
    b.push_back(static_cast<uint8_t>(i * 37));
  }
}

TEST(Base64Url, RejectsBadInput) {
  EXPECT_FALSE(Base64UrlDecode("Zg==").has_value());   // padding
  EXPECT_FALSE(Base64UrlDecode("Zm9v+").has_value());  // standard alphabet
  EXPECT_FALSE(Base64UrlDecode("Z").has_value());      // impossible length
  EXPECT_FALSE(Base64UrlDecode("Zh").has_value());     // non-canonical bits
  EXPECT_FALSE(Base64UrlDecode("Zm 9").has_value());   // whitespace
}

TEST(Hex, RoundTripAndRejects) {
  Bytes b = {0x00, 0xab, 0xff};
  EXPECT_EQ(HexEncode(b), "00abff");
  EXPECT_EQ(*HexDecode("00abff"), b);
  EXPECT_FALSE(HexDecode("0").has_value());
  EXPECT_FALSE(HexDecode("zz").has_value());
}

}  // namespace
}  // namespace sealdrop

namespace sealdrop {
namespace {

TEST(IsValidUtf8, AcceptsWellFormedAndRefusesTheRest) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("a\x80" "b"));          // a lone continuation byte
}

TEST(TruncateUtf8, NeverSplitsACharacter) {
  EXPECT_EQ(TruncateUtf8("abc", 10), "abc");
  EXPECT_EQ(TruncateUtf8("abcdef", 3), "abc");
  const std::string e = "\xc3\xa9";            // é, 2 bytes
  const std::string euro = "\xe2\x82\xac";     // €, 3 bytes
  const std::string smile = "\xf0\x9f\x98\x80"; // 4 bytes
  EXPECT_EQ(TruncateUtf8("a" + e, 2), "a");
  EXPECT_EQ(TruncateUtf8("a" + e, 3), "a" + e);
  EXPECT_EQ(TruncateUtf8("a" + euro, 2), "a");
  EXPECT_EQ(TruncateUtf8("a" + euro, 3), "a");
  EXPECT_EQ(TruncateUtf8("a" + euro + "b", 4), "a" + euro);
  EXPECT_EQ(TruncateUtf8(smile + smile, 5), smile);
  EXPECT_EQ(TruncateUtf8(smile, 0), "");
}

}  // namespace
}  // namespace sealdrop
