#include "crypto/jws.h"

#include <gtest/gtest.h>

#include "base/encoding.h"

namespace sealdrop {
namespace {

constexpr char kTyp[] = "sealdrop-receipt+jws";

class JwsTest : public ::testing::Test {
 protected:
  // A compact JWS over an arbitrary header text, correctly signed, so that
  // a rejection can only come from the header check.
  std::string SignedWithHeader(std::string_view header_json, std::string_view payload = "{}") {
    std::string input = Base64UrlEncode(AsBytes(header_json)) + "." +
                        Base64UrlEncode(AsBytes(payload));
    return input + "." + Base64UrlEncode(key_.Sign(AsBytes(input)).value());
  }
  std::string Sign(std::string_view payload) {
    return JwsSign(key_, key_.PublicKey().KeyId(), kTyp, AsBytes(payload)).value();
  }
  void ExpectMalformed(std::string_view compact) {
    auto parsed = JwsParse(compact);
    ASSERT_FALSE(parsed.has_value()) << compact.substr(0, 200);
    EXPECT_EQ(parsed.error().code, ErrorCode::kMalformed) << parsed.error().message;
    EXPECT_FALSE(JwsVerifyCompact(compact, key_.PublicKey(), kTyp).has_value());
  }
  void ExpectBadSignature(std::string_view compact) {
    auto v = JwsVerifyCompact(compact, key_.PublicKey(), kTyp);
    ASSERT_FALSE(v.has_value());
    EXPECT_EQ(v.error().code, ErrorCode::kCryptoFailure);
  }

  EcPrivateKey key_ = EcPrivateKey::Generate().value();
};

TEST_F(JwsTest, HeaderIsExactlyAlgKidTyp) {
  std::string compact = JwsSign(key_, "key-1", "t", AsBytes("p")).value();
  std::string header_b64 = compact.substr(0, compact.find('.'));
  EXPECT_EQ(ToString(Base64UrlDecode(header_b64).value()),
            R"({"alg":"ES256","kid":"key-1","typ":"t"})");
  // Characters JSON must escape stay escaped.
  compact = JwsSign(key_, "a\"b\\c", "t", AsBytes("p")).value();
  header_b64 = compact.substr(0, compact.find('.'));
  EXPECT_EQ(ToString(Base64UrlDecode(header_b64).value()),
            R"({"alg":"ES256","kid":"a\"b\\c","typ":"t"})");
  EXPECT_EQ(JwsParse(compact).value().kid, "a\"b\\c");
}

TEST_F(JwsTest, RoundTrip) {
  std::string compact = Sign(R"({"receipt":"r-1"})");
  auto parsed = JwsParse(compact);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->kid, key_.PublicKey().KeyId());
  EXPECT_EQ(parsed->typ, kTyp);
  EXPECT_EQ(ToString(parsed->payload), R"({"receipt":"r-1"})");
  EXPECT_EQ(parsed->signature.size(), 64u);
  EXPECT_EQ(parsed->signing_input, compact.substr(0, compact.rfind('.')));
  EXPECT_TRUE(JwsVerify(*parsed, key_.PublicKey()).has_value());
  auto payload = JwsVerifyCompact(compact, key_.PublicKey(), kTyp);
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(ToString(*payload), R"({"receipt":"r-1"})");

  auto empty = JwsVerifyCompact(Sign(""), key_.PublicKey(), kTyp);
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
}

TEST_F(JwsTest, FlippedSignatureFails) {
  std::string compact = Sign("payload");
  size_t sig_at = compact.rfind('.') + 1;
  for (size_t i : {sig_at, sig_at + 20, compact.size() - 2}) {
    std::string bad = compact;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    ExpectBadSignature(bad);
  }
}

TEST_F(JwsTest, FlippedPayloadFails) {
  std::string compact = Sign("payload bytes");
  size_t at = compact.find('.') + 1;
  std::string bad = compact;
  bad[at] = bad[at] == 'A' ? 'B' : 'A';
  ExpectBadSignature(bad);
  // Swapping in another validly signed payload also fails.
  std::string other = Sign("other bytes");
  std::string spliced = compact.substr(0, compact.find('.')) +
                        other.substr(other.find('.'), other.rfind('.') - other.find('.')) +
                        compact.substr(compact.rfind('.'));
  ExpectBadSignature(spliced);
}

TEST_F(JwsTest, WrongKeyFails) {
  auto other = EcPrivateKey::Generate().value();
  auto v = JwsVerifyCompact(Sign("x"), other.PublicKey(), kTyp);
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code, ErrorCode::kCryptoFailure);
}

TEST_F(JwsTest, WrongTypFails) {
  std::string compact = Sign("x");
  EXPECT_FALSE(JwsVerifyCompact(compact, key_.PublicKey(), "sealdrop-manifest+jws").has_value());
  EXPECT_FALSE(JwsVerifyCompact(compact, key_.PublicKey(), "").has_value());
}

TEST_F(JwsTest, OtherAlgorithmsAreRejected) {
  for (const char* alg : {"none", "HS256", "ES384", "RS256", "es256", "ES256 ", ""}) {
    ExpectMalformed(
        SignedWithHeader(std::string(R"({"alg":")") + alg + R"(","kid":"k","typ":"t"})"));
  }
  ExpectMalformed(SignedWithHeader(R"({"alg":null,"kid":"k","typ":"t"})"));
  ExpectMalformed(SignedWithHeader(R"({"alg":1,"kid":"k","typ":"t"})"));
  ExpectMalformed(SignedWithHeader(R"({"kid":"k","typ":"t"})"));
  // The classic "none" token: no signature at all.
  std::string none = Base64UrlEncode(AsBytes(R"({"alg":"none","kid":"k","typ":"t"})")) + "." +
                     Base64UrlEncode(AsBytes("{}")) + ".";
  ExpectMalformed(none);
}

TEST_F(JwsTest, CritAndUnknownMembersAreRejected) {
  ExpectMalformed(SignedWithHeader(R"({"alg":"ES256","crit":["exp"],"kid":"k","typ":"t"})"));
  ExpectMalformed(SignedWithHeader(R"({"alg":"ES256","crit":[],"kid":"k","typ":"t"})"));
  ExpectMalformed(SignedWithHeader(R"({"alg":"ES256","b64":false,"kid":"k","typ":"t"})"));
  ExpectMalformed(SignedWithHeader(R"({"alg":"ES256","jku":"http://x","kid":"k","typ":"t"})"));
  ExpectMalformed(SignedWithHeader(R"({"alg":"ES256","kid":"k"})"));
  ExpectMalformed(SignedWithHeader(R"({"alg":"ES256","typ":"t"})"));
  ExpectMalformed(SignedWithHeader(R"({"alg":"ES256","kid":5,"typ":"t"})"));
}

TEST_F(JwsTest, HeaderMustBeOneFlatObject) {
  // Duplicate names: which "alg" would count is exactly the ambiguity to avoid.
  ExpectMalformed(SignedWithHeader(R"({"alg":"none","alg":"ES256","kid":"k","typ":"t"})"));
  ExpectMalformed(SignedWithHeader(R"({"alg":"ES256","kid":"k","kid":"j","typ":"t"})"));
  ExpectMalformed(SignedWithHeader(R"({"alg":"ES256","kid":{"a":1},"typ":"t"})"));
  ExpectMalformed(SignedWithHeader(R"({"alg":"ES256","kid":["k"],"typ":"t"})"));
  ExpectMalformed(SignedWithHeader(R"(["ES256"])"));
  ExpectMalformed(SignedWithHeader(R"("ES256")"));
  ExpectMalformed(SignedWithHeader(R"({"alg":"ES256","kid":"k","typ":"t")"));
  ExpectMalformed(SignedWithHeader(R"({"alg":"ES256","kid":"k","typ":"t"}x)"));
  ExpectMalformed(SignedWithHeader(""));
  ExpectMalformed(SignedWithHeader("{\"alg\":\"ES256\",\"kid\":\"\xff\",\"typ\":\"t\"}"));
  // Deep nesting is refused without recursing into it.
  ExpectMalformed(SignedWithHeader(std::string(100000, '[') + std::string(100000, ']')));
  // A valid header still passes through this helper.
  EXPECT_TRUE(JwsParse(SignedWithHeader(R"({"alg":"ES256","kid":"k","typ":"t"})")).has_value());
  EXPECT_TRUE(
      JwsParse(SignedWithHeader(R"( {"typ":"t", "kid":"k", "alg":"ES256"} )")).has_value());
}

TEST_F(JwsTest, WrongNumberOfPartsIsRejected) {
  std::string compact = Sign("x");
  ExpectMalformed(compact + ".");
  ExpectMalformed(compact + ".AAAA");
  ExpectMalformed("." + compact);
  ExpectMalformed(compact.substr(0, compact.rfind('.')));
  ExpectMalformed(compact.substr(0, compact.find('.')));
  ExpectMalformed("");
  ExpectMalformed("..");
  ExpectMalformed("...");
}

TEST_F(JwsTest, BadBase64UrlIsRejected) {
  std::string compact = Sign("payload!");
  size_t dot1 = compact.find('.'), dot2 = compact.rfind('.');
  ExpectMalformed(compact.substr(0, dot1) + "=" + compact.substr(dot1));      // header padding
  ExpectMalformed("+" + compact.substr(1));                                  // std alphabet
  ExpectMalformed(compact.substr(0, dot2) + "=" + compact.substr(dot2));      // payload padding
  ExpectMalformed(compact.substr(0, dot1 + 1) + " " + compact.substr(dot1 + 1));  // whitespace
  ExpectMalformed(compact + "=");                                             // signature padding
  ExpectMalformed(compact.substr(0, dot2 + 1) + "/" + compact.substr(dot2 + 2));
  ExpectMalformed(compact + "\n");
}

TEST_F(JwsTest, SignatureMustBe64Bytes) {
  std::string compact = Sign("x");
  std::string input = compact.substr(0, compact.rfind('.'));
  Bytes sig = Base64UrlDecode(compact.substr(compact.rfind('.') + 1)).value();
  Bytes shorter(sig.begin(), sig.end() - 1), longer = sig;
  longer.push_back(0);
  ExpectMalformed(input + "." + Base64UrlEncode(shorter));
  ExpectMalformed(input + "." + Base64UrlEncode(longer));
  ExpectMalformed(input + "." + Base64UrlEncode(Bytes(72, 0x30)));  // DER-sized
}

TEST_F(JwsTest, OversizedInputIsRejected) {
  std::string compact = Sign("x");
  std::string huge = compact.substr(0, compact.find('.') + 1) +
                     std::string(kMaxJwsSize, 'A') + compact.substr(compact.rfind('.'));
  ExpectMalformed(huge);
  auto too_big = JwsSign(key_, "k", kTyp, Bytes(kMaxJwsSize, 0));
  ASSERT_FALSE(too_big.has_value());
  EXPECT_EQ(too_big.error().code, ErrorCode::kTooLarge);
  // Just under the limit still works.
  auto big = JwsSign(key_, "k", kTyp, Bytes(kMaxJwsSize / 2, 7));
  ASSERT_TRUE(big.has_value());
  EXPECT_TRUE(JwsVerifyCompact(*big, key_.PublicKey(), kTyp).has_value());
}

TEST_F(JwsTest, SignRejectsInvalidUtf8) {
  auto r = JwsSign(key_, "k\xff", kTyp, AsBytes("x"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace sealdrop
