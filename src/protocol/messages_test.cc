#include "protocol/messages.h"

#include <gtest/gtest.h>

namespace sealdrop {
namespace {

TEST(Control, RoundTrips) {
  ControlMessage m{.type = "order"};
  m.order_id = "abcd";
  m.price = 100;
  m.size = 12345;
  m.charge_required = true;
  auto p = ParseControl(EncodeControl(m));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->type, "order");
  EXPECT_EQ(p->order_id, "abcd");
  EXPECT_EQ(p->price, 100);
  EXPECT_EQ(p->size, 12345u);
  EXPECT_TRUE(p->charge_required);
}

TEST(Control, RejectsMalformed) {
  for (const char* bad : {"", "[]", "{}", R"({"type":5})", R"({"type":"login","user":7})",
                          R"({"type":"x","balance":"ten"})", R"({"type":"x","size":-1})",
                          R"({"type":"x","receipts":[1]})", R"({"type":"x","charge_required":1})",
                          "{\"type\":\"login\"", "\xff"}) {
    EXPECT_FALSE(ParseControl(bad).has_value()) << bad;
  }
  std::string big = R"({"type":"x","message":")" + std::string(kMaxControlSize, 'a') + "\"}";
  EXPECT_EQ(ParseControl(big).error().code, ErrorCode::kTooLarge);
  std::string long_user = R"({"type":"login","user":")" + std::string(300, 'a') + "\"}";
  EXPECT_FALSE(ParseControl(long_user).has_value());
}

TEST(Capabilities, StrictParsing) {
  InnerCapabilities c;
  c.package_suites = {"HPKE-P256-SHA256-A256GCM"};
  c.key_wrap_chain_pem = "-----BEGIN CERTIFICATE-----";
  ASSERT_TRUE(ParseCapabilities(EncodeCapabilities(c)).has_value());
  for (const char* bad : {R"({"version":1,"package_suites":[],"key_wrap_chain":""})",
                          R"({"version":2,"package_suites":["a"],"key_wrap_chain":""})",
                          R"({"version":1,"package_suites":["a"]})",
                          R"({"version":1,"package_suites":["a"],"key_wrap_chain":"","x":1})",
                          R"({"version":1,"package_suites":[1],"key_wrap_chain":""})", "nope"}) {
    EXPECT_FALSE(ParseCapabilities(AsBytes(bad)).has_value()) << bad;
  }
}

TEST(Claims, ReceiptAndReleaseAreStrict) {
  ReceiptClaims r{"id", "alice", 1, "hello", "1.0", 100, "dev", 5, "vendor"};
  auto back = ParseReceiptClaims(AsBytes(EncodeReceiptClaims(r)));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->user, "alice");
  std::string text = EncodeReceiptClaims(r);
  EXPECT_FALSE(ParseReceiptClaims(AsBytes(text.substr(0, text.size() - 1))).has_value());
  EXPECT_FALSE(ParseReceiptClaims(AsBytes(R"({"receipt_id":"x"})")).has_value());
  ReleaseClaims rel{"p", "d", "dev", "o", "r", "s"};
  ASSERT_TRUE(ParseReleaseClaims(AsBytes(EncodeReleaseClaims(rel))).has_value());
  std::string t = EncodeReleaseClaims(rel);
  t.insert(t.size() - 1, R"(,"extra":1)");
  EXPECT_FALSE(ParseReleaseClaims(AsBytes(t)).has_value());
}

TEST(TrpFrames, LimitsCoverEveryType) {
  for (int t = 0; t < 256; ++t) {
    auto max = TrpMaxBody(static_cast<uint8_t>(t));
    if (max) EXPECT_LE(*max, size_t{4} << 20) << t;
  }
  EXPECT_FALSE(TrpMaxBody(0x50).has_value());
  EXPECT_EQ(*TrpMaxBody(static_cast<uint8_t>(TrpType::kOpenSession)), 0u);
}

TEST(ErrorJson, RoundTripsAndToleratesGarbage) {
  Error e = ParseErrorJson(ErrorJson({ErrorCode::kRefused, "no"}));
  EXPECT_EQ(e.code, ErrorCode::kRefused);
  EXPECT_EQ(e.message, "no");
  EXPECT_EQ(ParseErrorJson(ToBytes("garbage")).code, ErrorCode::kMalformed);
}

}  // namespace
}  // namespace sealdrop

namespace sealdrop {
namespace {

// Found by the messages fuzzer: cutting an error message at 1000 bytes could
// split a UTF-8 character, and JSON serialisation then threw (the server
// dropped the session, the processor terminated).
TEST(ErrorJson, LongMessagesAreCutAtACharacterBoundary) {
  std::string message = std::string(999, 'a') + "\u00e9" + "tail";
  message = std::string(999, 'a') + "\xc3\xa9" + "tail";
  Bytes body;
  ASSERT_NO_THROW(body = ErrorJson({ErrorCode::kRefused, message}));
  Error back = ParseErrorJson(body);
  EXPECT_EQ(back.code, ErrorCode::kRefused);
  EXPECT_EQ(back.message, std::string(999, 'a'));
  std::string control;
  ASSERT_NO_THROW(control = EncodeControl(ErrorControl({ErrorCode::kRefused, message})));
  auto parsed = ParseControl(control);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->message, std::string(999, 'a'));
}

TEST(ErrorJson, InvalidUtf8IsReplacedNotThrown) {
  std::string message = "cannot open /tmp/\xff\xfe.bin";
  Bytes body;
  ASSERT_NO_THROW(body = ErrorJson({ErrorCode::kIo, message}));
  EXPECT_EQ(ParseErrorJson(body).code, ErrorCode::kIo);
  ASSERT_NO_THROW((void)EncodeControl(ErrorControl({ErrorCode::kIo, message})));
}

}  // namespace
}  // namespace sealdrop
