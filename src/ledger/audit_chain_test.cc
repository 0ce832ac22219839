#include "ledger/audit_chain.h"

#include <gtest/gtest.h>

namespace sealdrop {
namespace {

TEST(AuditChain, CanonicalEncodingIsTheDocumentedJsonArray) {
  auto c = CanonicalAuditEntry(1, 1700000000, "test", R"({"a":1})");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(*c, R"([1,1700000000,"test","{\"a\":1}"])");
}

TEST(AuditChain, HashMatchesIndependentComputation) {
  // sha256("0"*64 + "\n" + '[1,1700000000,"test","{\"a\":1}"]'), computed with
  // Python's hashlib, pins the format against accidental change.
  auto h = AuditEntryHash(kAuditGenesisHash, 1, 1700000000, "test", R"({"a":1})");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(*h, "c09a3163c6e76e811cfad3d6c8278eac4079e2a357c73cc8eeae9fd7494018d5");
}

TEST(AuditChain, InvalidUtf8IsRejectedNotReplaced) {
  auto c = CanonicalAuditEntry(1, 0, "test", std::string("\"\xff\""));
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, ErrorCode::kMalformed);
}

TEST(AuditChain, KindValidation) {
  EXPECT_TRUE(ValidateAuditKind("charge").has_value());
  EXPECT_TRUE(ValidateAuditKind("user.add").has_value());
  EXPECT_FALSE(ValidateAuditKind("").has_value());
  EXPECT_FALSE(ValidateAuditKind("Charge").has_value());
  EXPECT_FALSE(ValidateAuditKind("a b").has_value());
  EXPECT_FALSE(ValidateAuditKind(std::string(65, 'a')).has_value());
}

std::vector<AuditEntry> MakeChain(int n) {
  std::vector<AuditEntry> out;
  std::string prev(kAuditGenesisHash);
  for (int i = 1; i <= n; ++i) {
    AuditEntry e;
    e.seq = i;
    e.time = 1000 + i;
    e.kind = "test";
    e.detail = "{\"i\":" + std::to_string(i) + "}";
    e.prev_hash = prev;
    e.hash = *AuditEntryHash(prev, e.seq, e.time, e.kind, e.detail);
    prev = e.hash;
    out.push_back(e);
  }
  return out;
}

Status VerifyAll(const std::vector<AuditEntry>& chain) {
  AuditChainVerifier v;
  for (const auto& e : chain) SEALDROP_TRY(v.Check(e));
  return Ok();
}

TEST(AuditChain, VerifierAcceptsAnHonestChain) {
  auto chain = MakeChain(5);
  AuditChainVerifier v;
  for (const auto& e : chain) ASSERT_TRUE(v.Check(e).has_value());
  EXPECT_EQ(v.entries_checked(), 5);
  EXPECT_EQ(v.head(), chain.back().hash);
}

TEST(AuditChain, VerifierNamesTheFirstBadEntry) {
  {
    auto chain = MakeChain(5);
    chain[2].detail = "{\"i\":99}";
    auto st = VerifyAll(chain);
    ASSERT_FALSE(st.has_value());
    EXPECT_EQ(st.error().code, ErrorCode::kCryptoFailure);
    EXPECT_NE(st.error().message.find("entry 3 "), std::string::npos) << st.error().message;
  }
  {
    auto chain = MakeChain(5);
    chain.erase(chain.begin() + 1);
    auto st = VerifyAll(chain);
    ASSERT_FALSE(st.has_value());
    EXPECT_NE(st.error().message.find("entry 2 is missing"), std::string::npos)
        << st.error().message;
  }
  {
    // Rehashing one entry in place still breaks the link to the next one.
    auto chain = MakeChain(5);
    chain[1].time += 1;
    chain[1].hash = *AuditEntryHash(chain[1].prev_hash, chain[1].seq, chain[1].time,
                                    chain[1].kind, chain[1].detail);
    auto st = VerifyAll(chain);
    ASSERT_FALSE(st.has_value());
    EXPECT_NE(st.error().message.find("entry 3 "), std::string::npos) << st.error().message;
  }
  {
    auto chain = MakeChain(2);
    chain[0].prev_hash = std::string(64, '1');
    auto st = VerifyAll(chain);
    ASSERT_FALSE(st.has_value());
    EXPECT_NE(st.error().message.find("entry 1 "), std::string::npos) << st.error().message;
  }
}

}  // namespace
}  // namespace sealdrop
