#include "crypto/aead.h"

#include <gtest/gtest.h>

#include "base/encoding.h"
#include "crypto/random.h"

namespace sealdrop {
namespace {

Bytes Hex(std::string_view hex) { return HexDecode(hex).value(); }
SecretBytes SecretHex(std::string_view hex) { return SecretBytes(Hex(hex), SecretAccess{}); }

struct GcmVector {
  int tc_id;
  const char* key;
  const char* iv;
  const char* aad;
  const char* msg;
  const char* ct;
  const char* tag;
};

// Wycheproof testvectors_v1/aes_gcm_test.json (C2SP/wycheproof), group
// keySize 256, ivSize 96, tagSize 128; all "valid".
const GcmVector kValid[] = {
    {91, "92ace3e348cd821092cd921aa3546374299ab46209691bc28b8752d17f123c20",
     "00112233445566778899aabb", "00000000ffffffff", "00010203040506070809",
     "e27abdd2d2a53d2f136b", "9a4a2579529301bcfb71c78d4060f52c"},
    {92, "29d3a44f8723dc640239100c365423a312934ac80239212ac3df3421a2098123",
     "00112233445566778899aabb", "aabbccddeeff", "", "", "2a7d77fa526b8250cb296078926b5020"},
    {94, "cc56b680552eb75008f5484b4cb803fa5063ebd6eab91f6ab6aef4916a766273",
     "99e23ec48985bccdeeab60f1", "", "2a", "06", "633c1e9703ef744ffffb40edf9d14355"},
    {101, "cdccfe3f46d782ef47df4e72f0c02d9c7f774def970d23486f11a57f54247f17",
     "376187894605a8d45e30de51", "956846a209e087ed", "e28e0e9f9d22463ac0e42639b530f42102fded75",
     "feca44952447015b5df1f456df8ca4bb4eee2ce2", "082e91924deeb77880e1b1c84f9b8d30"},
    {128, "00112233445566778899aabbccddeeff102132435465768798a9bacbdcedfe0f",
     "000000000000000000000000", "", "561008fa07a68f5c61285cd013464eaf",
     "23293e9b07ca7d1b0cae7cc489a973b3", "ffffffffffffffffffffffffffffffff"},
    {129, "00112233445566778899aabbccddeeff102132435465768798a9bacbdcedfe0f",
     "ffffffffffffffffffffffff", "", "c6152244cea1978d3e0bc274cf8c0b3b",
     "7cb6fc7c6abc009efe9551a99f36a421", "00000000000000000000000000000000"},
};

TEST(Aes256GcmRaw, WycheproofValidVectors) {
  for (const GcmVector& v : kValid) {
    SCOPED_TRACE(v.tc_id);
    auto aead = Aes256GcmRaw::Create(SecretHex(v.key));
    ASSERT_TRUE(aead.has_value());
    Bytes data = Hex(v.msg);
    std::array<uint8_t, kGcmTagSize> tag{};
    ASSERT_TRUE(aead->SealInPlace(Hex(v.iv), Hex(v.aad), data, tag).has_value());
    EXPECT_EQ(HexEncode(data), v.ct);
    EXPECT_EQ(HexEncode(tag), v.tag);

    Bytes ct = Hex(v.ct);
    Bytes expected_tag = Hex(v.tag);
    ASSERT_TRUE(aead->OpenInPlace(Hex(v.iv), Hex(v.aad), ct,
                                  std::span<const uint8_t, kGcmTagSize>(expected_tag.data(),
                                                                         kGcmTagSize))
                    .has_value());
    EXPECT_EQ(HexEncode(ct), v.msg);
  }
}

TEST(Aes256GcmRaw, StreamingMatchesVectorsSplitAnywhere) {
  for (const GcmVector& v : kValid) {
    SCOPED_TRACE(v.tc_id);
    auto aead = Aes256GcmRaw::Create(SecretHex(v.key));
    ASSERT_TRUE(aead.has_value());
    const Bytes msg = Hex(v.msg);
    for (size_t split = 0; split <= msg.size(); ++split) {
      Bytes data = msg;
      ASSERT_TRUE(aead->Begin(Hex(v.iv), Hex(v.aad), true).has_value());
      ASSERT_TRUE(aead->Update(std::span(data.data(), split)).has_value());
      ASSERT_TRUE(aead->Update(std::span(data.data() + split, data.size() - split)).has_value());
      std::array<uint8_t, kGcmTagSize> tag{};
      ASSERT_TRUE(aead->FinishSeal(tag).has_value());
      EXPECT_EQ(HexEncode(data), v.ct);
      EXPECT_EQ(HexEncode(tag), v.tag);

      ASSERT_TRUE(aead->Begin(Hex(v.iv), Hex(v.aad), false).has_value());
      ASSERT_TRUE(aead->Update(std::span(data.data(), split)).has_value());
      ASSERT_TRUE(aead->Update(std::span(data.data() + split, data.size() - split)).has_value());
      ASSERT_TRUE(aead->FinishOpen(tag).has_value());
      EXPECT_EQ(data, msg);

      tag[split % kGcmTagSize] ^= 1;
      Bytes again = Hex(v.ct);
      ASSERT_TRUE(aead->Begin(Hex(v.iv), Hex(v.aad), false).has_value());
      ASSERT_TRUE(aead->Update(again).has_value());
      auto bad = aead->FinishOpen(tag);
      ASSERT_FALSE(bad.has_value());
      EXPECT_EQ(bad.error().code, ErrorCode::kCryptoFailure);
    }
  }
}

// Wycheproof tcId 130: "Flipped bit 0 in tag" (result "invalid").
TEST(Aes256GcmRaw, WycheproofFlippedTagIsRejectedAndWiped) {
  auto aead = Aes256GcmRaw::Create(
      SecretHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"));
  ASSERT_TRUE(aead.has_value());
  Bytes ct = Hex("b2061457c0759fc1749f174ee1ccadfa");
  Bytes tag = Hex("9de8fef6d8ab1bf1bf887232eab590dd");
  auto st = aead->OpenInPlace(Hex("505152535455565758595a5b"), {}, ct,
                              std::span<const uint8_t, kGcmTagSize>(tag.data(), kGcmTagSize));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kCryptoFailure);
  EXPECT_EQ(ct, Bytes(16, 0));
}

TEST(Aes256GcmRaw, RejectsBadKeyAndNonceSizes) {
  EXPECT_EQ(Aes256GcmRaw::Create(SecretBytes(16)).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(Aes256GcmRaw::Create(SecretBytes(0)).error().code, ErrorCode::kInvalidArgument);
  auto aead = Aes256GcmRaw::Create(RandomSecret(32));
  ASSERT_TRUE(aead.has_value());
  Bytes data(8, 1);
  std::array<uint8_t, kGcmTagSize> tag{};
  EXPECT_FALSE(aead->SealInPlace(Bytes(8), {}, data, tag).has_value());
  EXPECT_FALSE(aead->OpenInPlace(Bytes(16), {}, data, tag).has_value());
}

// Seals "message" under a fixed key, then checks that each single-bit change
// to nonce, aad, ciphertext or tag makes OpenInPlace fail and wipe.
TEST(Aes256GcmRaw, AnyFlippedBitFails) {
  SecretBytes key = RandomSecret(32);
  auto aead = Aes256GcmRaw::Create(key);
  ASSERT_TRUE(aead.has_value());
  const Bytes nonce = RandomBytes(kGcmNonceSize), aad = ToBytes("header");
  const Bytes msg = ToBytes("a message long enough to span two blocks");
  Bytes ct = msg;
  std::array<uint8_t, kGcmTagSize> tag{};
  ASSERT_TRUE(aead->SealInPlace(nonce, aad, ct, tag).has_value());

  auto open = [&](Bytes n, Bytes a, Bytes c, std::array<uint8_t, kGcmTagSize> t) {
    bool ok = aead->OpenInPlace(n, a, c, t).has_value();
    if (!ok) {
      EXPECT_EQ(c, Bytes(c.size(), 0)) << "output not wiped";
    }
    return ok;
  };
  EXPECT_TRUE(open(nonce, aad, ct, tag));
  for (size_t bit : {0u, 7u, 95u}) {
    Bytes n = nonce;
    n[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(open(n, aad, ct, tag)) << "nonce bit " << bit;
  }
  Bytes a = aad;
  a[0] ^= 1;
  EXPECT_FALSE(open(nonce, a, ct, tag));
  EXPECT_FALSE(open(nonce, {}, ct, tag));
  for (size_t i : {size_t{0}, ct.size() - 1}) {
    Bytes c = ct;
    c[i] ^= 0x80;
    EXPECT_FALSE(open(nonce, aad, c, tag)) << "ciphertext byte " << i;
  }
  for (size_t i : {0, 15}) {
    auto t = tag;
    t[i] ^= 1;
    EXPECT_FALSE(open(nonce, aad, ct, t)) << "tag byte " << i;
  }
  Bytes truncated(ct.begin(), ct.end() - 1);
  EXPECT_FALSE(open(nonce, aad, truncated, tag));

  auto other = Aes256GcmRaw::Create(RandomSecret(32));
  ASSERT_TRUE(other.has_value());
  Bytes c = ct;
  EXPECT_FALSE(other->OpenInPlace(nonce, aad, c, tag).has_value());
  EXPECT_EQ(c, Bytes(c.size(), 0));

  // The object stays usable after failures.
  EXPECT_TRUE(open(nonce, aad, ct, tag));
}

TEST(Aes256Gcm, RoundTripAndFreshNonces) {
  auto aead = Aes256Gcm::Create(RandomSecret(32));
  ASSERT_TRUE(aead.has_value());
  Bytes msg = ToBytes("key material at rest");
  auto c1 = aead->Encrypt(msg, AsBytes("ad"));
  auto c2 = aead->Encrypt(msg, AsBytes("ad"));
  ASSERT_TRUE(c1.has_value() && c2.has_value());
  EXPECT_EQ(c1->size(), kGcmNonceSize + msg.size() + kGcmTagSize);
  EXPECT_NE(*c1, *c2);
  auto p = aead->Decrypt(*c1, AsBytes("ad"));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(ToString(p->Reveal(SecretAccess{})), "key material at rest");

  auto empty = aead->Encrypt({}, {});
  ASSERT_TRUE(empty.has_value());
  auto empty_pt = aead->Decrypt(*empty, {});
  ASSERT_TRUE(empty_pt.has_value());
  EXPECT_TRUE(empty_pt->empty());
}

TEST(Aes256Gcm, DecryptFailuresAreUniform) {
  SecretBytes key = RandomSecret(32);
  auto aead = Aes256Gcm::Create(key);
  ASSERT_TRUE(aead.has_value());
  Bytes c = aead->Encrypt(AsBytes("secret"), AsBytes("ad")).value();

  std::vector<Bytes> bad;
  for (size_t i = 0; i < c.size(); i += 5) {  // nonce, body and tag positions
    Bytes x = c;
    x[i] ^= 0x01;
    bad.push_back(x);
  }
  bad.push_back(Bytes(c.begin(), c.end() - 1));
  bad.push_back(Bytes(c.begin(), c.begin() + kGcmNonceSize + kGcmTagSize - 1));
  bad.push_back({});
  for (const Bytes& x : bad) {
    auto r = aead->Decrypt(x, AsBytes("ad"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kCryptoFailure);
    EXPECT_EQ(r.error().message, "decryption failed");
  }
  EXPECT_EQ(aead->Decrypt(c, AsBytes("AD")).error().code, ErrorCode::kCryptoFailure);
  auto other = Aes256Gcm::Create(RandomSecret(32));
  EXPECT_EQ(other->Decrypt(c, AsBytes("ad")).error().code, ErrorCode::kCryptoFailure);
}

}  // namespace
}  // namespace sealdrop
