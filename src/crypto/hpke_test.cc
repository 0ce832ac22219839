#include "crypto/hpke.h"

#include <gtest/gtest.h>

#include "base/encoding.h"
#include "crypto/random.h"

namespace sealdrop {
namespace {

Bytes Hex(std::string_view hex) { return HexDecode(hex).value(); }
SecretBytes SecretHex(std::string_view hex) { return SecretBytes(Hex(hex), SecretAccess{}); }

// RFC 9180 Appendix A.3.1: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256,
// AES-128-GCM, base mode (copied from cfrg/draft-irtf-cfrg-hpke).
namespace a3 {
constexpr uint16_t kAeadId = 0x0001;
constexpr char kInfo[] = "4f6465206f6e2061204772656369616e2055726e";
constexpr char kSkEm[] = "4995788ef4b9d6132b249ce59a77281493eb39af373d236a1fe415cb0c2d7beb";
constexpr char kPkEm[] =
    "04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4b78e5b"
    "7f951c0900be863c403ce65c9bfcb9382657222d18c4";
constexpr char kSkRm[] = "f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2";
constexpr char kPkRm[] =
    "04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b4cf969b8a0e539"
    "c7f62fb3d30ad6aa8f80e30f1d128aafd68a2ce72ea0";
constexpr char kEnc[] =
    "04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4b78e5b"
    "7f951c0900be863c403ce65c9bfcb9382657222d18c4";
constexpr char kPt[] = "4265617574792069732074727574682c20747275746820626561757479";
// Sequence number 0.
constexpr char kAad0[] = "436f756e742d30";
constexpr char kCt0[] =
    "5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f9076ac232e3ab252"
    "3f39513434";
// Sequence number 1: a different nonce, so a single-shot Open must refuse it.
constexpr char kAad1[] = "436f756e742d31";
constexpr char kCt1[] =
    "fa6f037b47fc21826b610172ca9637e82d6e5801eb31cbd3748271affd4ecb06646e0329cbdf3c3cd6"
    "55b28e82";
}  // namespace a3

TEST(HpkeRfc9180, A3KeysDeserialize) {
  auto e = EcPrivateKey::FromScalar(SecretHex(a3::kSkEm));
  auto r = EcPrivateKey::FromScalar(SecretHex(a3::kSkRm));
  ASSERT_TRUE(e.has_value() && r.has_value());
  EXPECT_EQ(HexEncode(e->PublicKey().ToPoint()), a3::kPkEm);
  EXPECT_EQ(HexEncode(r->PublicKey().ToPoint()), a3::kPkRm);
}

TEST(HpkeRfc9180, A3SealMatchesVector) {
  auto e = EcPrivateKey::FromScalar(SecretHex(a3::kSkEm)).value();
  auto pk_r = EcPublicKey::FromPoint(Hex(a3::kPkRm)).value();
  auto sealed = hpke_internal::SealWithEphemeral(a3::kAeadId, pk_r, e, Hex(a3::kInfo),
                                                 Hex(a3::kAad0), SecretHex(a3::kPt));
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
  EXPECT_EQ(HexEncode(sealed->enc), a3::kEnc);
  EXPECT_EQ(HexEncode(sealed->ciphertext), a3::kCt0);
}

TEST(HpkeRfc9180, A3OpenMatchesVector) {
  auto r = EcPrivateKey::FromScalar(SecretHex(a3::kSkRm)).value();
  auto pt = hpke_internal::Open(a3::kAeadId, r, Hex(a3::kEnc), Hex(a3::kInfo), Hex(a3::kAad0),
                                Hex(a3::kCt0));
  ASSERT_TRUE(pt.has_value());
  EXPECT_EQ(HexEncode(pt->Reveal(SecretAccess{})), a3::kPt);

  // Single shot means sequence number 0 only.
  EXPECT_FALSE(hpke_internal::Open(a3::kAeadId, r, Hex(a3::kEnc), Hex(a3::kInfo),
                                   Hex(a3::kAad1), Hex(a3::kCt1))
                   .has_value());
  // The same bytes under the production AEAD id derive a different key.
  EXPECT_FALSE(hpke_internal::Open(0x0002, r, Hex(a3::kEnc), Hex(a3::kInfo), Hex(a3::kAad0),
                                   Hex(a3::kCt0))
                   .has_value());
}

TEST(HpkeRfc9180, UnknownAeadIdIsRefused) {
  auto e = EcPrivateKey::FromScalar(SecretHex(a3::kSkEm)).value();
  auto r = EcPrivateKey::FromScalar(SecretHex(a3::kSkRm)).value();
  for (uint16_t id : {0x0000, 0x0003, 0xffff}) {
    EXPECT_EQ(hpke_internal::SealWithEphemeral(id, r.PublicKey(), e, {}, {}, SecretBytes(1))
                  .error()
                  .code,
              ErrorCode::kInvalidArgument);
    EXPECT_EQ(hpke_internal::Open(id, r, Hex(a3::kEnc), Hex(a3::kInfo), Hex(a3::kAad0),
                                  Hex(a3::kCt0))
                  .error()
                  .code,
              ErrorCode::kCryptoFailure);
  }
}

class HpkeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sealed_ = HpkeSeal(recipient_.PublicKey(), info_, aad_, plaintext_).value();
  }
  // Expects HpkeOpen to fail the one uniform way.
  void ExpectOpenFails(const EcPrivateKey& key, ByteView enc, ByteView info, ByteView aad,
                       ByteView ct) {
    auto r = HpkeOpen(key, enc, info, aad, ct);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kCryptoFailure);
    EXPECT_EQ(r.error().message, "HPKE decryption failed");
  }

  EcPrivateKey recipient_ = EcPrivateKey::Generate().value();
  Bytes info_ = ToBytes("sealdrop key envelope");
  Bytes aad_ = ToBytes("package 42");
  SecretBytes plaintext_ = RandomSecret(32);
  HpkeSealed sealed_;
};

TEST_F(HpkeTest, RoundTrip) {
  EXPECT_EQ(sealed_.enc.size(), kP256PointSize);
  EXPECT_EQ(sealed_.ciphertext.size(), plaintext_.size() + 16);
  auto pt = HpkeOpen(recipient_, sealed_.enc, info_, aad_, sealed_.ciphertext);
  ASSERT_TRUE(pt.has_value());
  EXPECT_TRUE(*pt == plaintext_);
  // A fresh ephemeral key every time.
  auto again = HpkeSeal(recipient_.PublicKey(), info_, aad_, plaintext_).value();
  EXPECT_NE(again.enc, sealed_.enc);
  EXPECT_NE(again.ciphertext, sealed_.ciphertext);
}

TEST_F(HpkeTest, EmptyPlaintextAndContext) {
  auto s = HpkeSeal(recipient_.PublicKey(), {}, {}, SecretBytes()).value();
  auto pt = HpkeOpen(recipient_, s.enc, {}, {}, s.ciphertext);
  ASSERT_TRUE(pt.has_value());
  EXPECT_TRUE(pt->empty());
}

TEST_F(HpkeTest, WrongRecipientKeyFails) {
  auto other = EcPrivateKey::Generate().value();
  ExpectOpenFails(other, sealed_.enc, info_, aad_, sealed_.ciphertext);
}

TEST_F(HpkeTest, WrongInfoOrAadFails) {
  ExpectOpenFails(recipient_, sealed_.enc, ToBytes("sealdrop key envelopE"), aad_,
                  sealed_.ciphertext);
  ExpectOpenFails(recipient_, sealed_.enc, {}, aad_, sealed_.ciphertext);
  ExpectOpenFails(recipient_, sealed_.enc, info_, ToBytes("package 43"), sealed_.ciphertext);
  ExpectOpenFails(recipient_, sealed_.enc, info_, {}, sealed_.ciphertext);
}

TEST_F(HpkeTest, TamperedCiphertextFails) {
  for (size_t i : {size_t{0}, size_t{31}, sealed_.ciphertext.size() - 1}) {
    Bytes ct = sealed_.ciphertext;
    ct[i] ^= 0x04;
    ExpectOpenFails(recipient_, sealed_.enc, info_, aad_, ct);
  }
  const Bytes& ct = sealed_.ciphertext;
  ExpectOpenFails(recipient_, sealed_.enc, info_, aad_, Bytes(ct.begin(), ct.end() - 1));
  ExpectOpenFails(recipient_, sealed_.enc, info_, aad_, Bytes(ct.begin(), ct.begin() + 15));
  ExpectOpenFails(recipient_, sealed_.enc, info_, aad_, {});
  Bytes longer = ct;
  longer.push_back(0);
  ExpectOpenFails(recipient_, sealed_.enc, info_, aad_, longer);
}

TEST_F(HpkeTest, MalformedEncFails) {
  const Bytes& enc = sealed_.enc;
  std::vector<Bytes> bad = {
      {},
      Bytes(enc.begin(), enc.end() - 1),
      Bytes(enc.begin(), enc.begin() + 33),  // compressed-length prefix of the point
      Bytes(65, 0),
      Hex("04" + std::string(128, '0')),  // (0, 0) is not on the curve
  };
  Bytes flipped = enc;
  flipped[40] ^= 1;  // almost certainly off the curve
  bad.push_back(flipped);
  Bytes prefix = enc;
  prefix[0] = 0x03;
  bad.push_back(prefix);
  Bytes longer = enc;
  longer.push_back(0);
  bad.push_back(longer);
  // A valid point, but not the one the sender used.
  bad.push_back(EcPrivateKey::Generate().value().PublicKey().ToPoint());
  for (const Bytes& e : bad) ExpectOpenFails(recipient_, e, info_, aad_, sealed_.ciphertext);
}

}  // namespace
}  // namespace sealdrop
