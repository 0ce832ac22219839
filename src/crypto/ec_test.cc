#include "crypto/ec.h"

#include <openssl/pem.h>

#include <gtest/gtest.h>

#include "base/encoding.h"
#include "crypto/ossl_internal.h"
#include "crypto/sha256.h"

namespace sealdrop {
namespace {

Bytes Hex(std::string_view hex) { return HexDecode(hex).value(); }
SecretBytes SecretHex(std::string_view hex) { return SecretBytes(Hex(hex), SecretAccess{}); }

// Wycheproof testvectors_v1/ecdsa_secp256r1_sha256_p1363_test.json
// (C2SP/wycheproof), first test group.
constexpr char kWycheproofKeyDer[] =
    "3059301306072a8648ce3d020106082a8648ce3d030107034200042927b10512bae3eddcfe467828128bad29"
    "03269919f7086069c8c4df6c732838c7787964eaac00e5921fb1498a60f4606766b3d9685001558d1a974e73"
    "41513e";
constexpr char kWycheproofKeyPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKSexBRK64+3c/kZ4KBKLrSkDJpkZ\n"
    "9whgacjE32xzKDjHeHlk6qwA5ZIfsUmKYPRgZ2az2WhQAVWNGpdOc0FRPg==\n"
    "-----END PUBLIC KEY-----\n";
constexpr char kWycheproofPoint[] =
    "042927b10512bae3eddcfe467828128bad2903269919f7086069c8c4df6c732838c7787964eaac00e5921fb1"
    "498a60f4606766b3d9685001558d1a974e7341513e";
constexpr char kMsg[] = "313233343030";
// tcId 1, "valid".
constexpr char kValidSig[] =
    "2ba3a8be6b94d5ec80a6d9d1190a436effe50d85a1eee859b8cc6af9bd5c2e184cd60b855d442f5b3c7b11eb"
    "6c4e0ae7525fe710fab9aa7c77a67f79e6fadd76";

TEST(EcPublicKey, WycheproofKnownGoodSignatureVerifies) {
  auto key = EcPublicKey::FromPem(kWycheproofKeyPem);
  ASSERT_TRUE(key.has_value()) << key.error().message;
  EXPECT_TRUE(key->Verify(Hex(kMsg), Hex(kValidSig)).has_value());
}

TEST(EcPublicKey, WycheproofInvalidSignaturesFail) {
  auto key = EcPublicKey::FromPoint(Hex(kWycheproofPoint));
  ASSERT_TRUE(key.has_value());
  const std::string invalid[] = {
      // tcId 4: r replaced by n - r.
      "d45c5740946b2a147f59262ee6f5bc90bd01ed280528b62b3aed5fc93f06f739b329f479a2bbd0a5c384ee"
      "1493b1f5186a87139cac5df4087c134b49156847db",
      std::string(128, '0'),        // tcId 11: r = 0, s = 0
      std::string(127, '0') + "1",  // tcId 12: r = 0, s = 1
  };
  for (const std::string& sig : invalid) {
    ASSERT_EQ(sig.size(), 2 * kEs256SignatureSize);
    auto st = key->Verify(Hex(kMsg), Hex(sig));
    ASSERT_FALSE(st.has_value()) << sig;
    EXPECT_EQ(st.error().code, ErrorCode::kCryptoFailure);
  }
  // tcId 2 ("r + n", 65 bytes) cannot even be expressed as r || s.
  EXPECT_FALSE(key->Verify(Hex(kMsg), Hex(std::string(kValidSig) + "00")).has_value());
}

TEST(EcPublicKey, ModifiedSignatureOrMessageFails) {
  auto key = EcPublicKey::FromSpkiDer(Hex(kWycheproofKeyDer));
  ASSERT_TRUE(key.has_value());
  Bytes sig = Hex(kValidSig);
  for (size_t i : {size_t{0}, size_t{31}, size_t{32}, size_t{63}}) {
    Bytes bad = sig;
    bad[i] ^= 0x01;
    EXPECT_EQ(key->Verify(Hex(kMsg), bad).error().code, ErrorCode::kCryptoFailure) << i;
  }
  EXPECT_FALSE(key->Verify(Hex("313233343031"), sig).has_value());
  EXPECT_FALSE(key->Verify(Hex(kMsg), Bytes(sig.begin(), sig.end() - 1)).has_value());
  EXPECT_FALSE(key->Verify(Hex(kMsg), {}).has_value());
}

TEST(EcPublicKey, EncodingsRoundTripAndKeyIdIsSpkiHash) {
  auto from_pem = EcPublicKey::FromPem(kWycheproofKeyPem);
  auto from_der = EcPublicKey::FromSpkiDer(Hex(kWycheproofKeyDer));
  auto from_point = EcPublicKey::FromPoint(Hex(kWycheproofPoint));
  ASSERT_TRUE(from_pem && from_der && from_point);
  EXPECT_TRUE(*from_pem == *from_der);
  EXPECT_TRUE(*from_der == *from_point);
  EXPECT_EQ(HexEncode(from_point->ToSpkiDer()), kWycheproofKeyDer);
  EXPECT_EQ(HexEncode(from_der->ToPoint()), kWycheproofPoint);
  EXPECT_EQ(from_point->ToPem(), kWycheproofKeyPem);
  EXPECT_EQ(from_pem->KeyId(), Sha256Hex(Hex(kWycheproofKeyDer)));
  EXPECT_EQ(from_pem->KeyId().size(), 64u);
}

TEST(EcPublicKey, EncodingsAreWhatOpenSslWrites) {
  // ToSpkiDer and ToPem build the encoding from the point; OpenSSL's own
  // encoder must agree for any key.
  for (int i = 0; i < 20; ++i) {
    auto priv = EcPrivateKey::Generate();
    ASSERT_TRUE(priv.has_value());
    EcPublicKey pub = priv->PublicKey();
    EVP_PKEY* pkey = pub.impl().pkey.get();
    const int len = i2d_PUBKEY(pkey, nullptr);
    ASSERT_GT(len, 0);
    Bytes der(static_cast<size_t>(len));
    uint8_t* p = der.data();
    ASSERT_EQ(i2d_PUBKEY(pkey, &p), len);
    EXPECT_EQ(HexEncode(pub.ToSpkiDer()), HexEncode(der));
    UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
    ASSERT_EQ(PEM_write_bio_PUBKEY(bio.get(), pkey), 1);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    EXPECT_EQ(pub.ToPem(), std::string(data, static_cast<size_t>(n)));
  }
}

TEST(EcPublicKey, CompressedSpkiGetsTheSameKeyId) {
  // The same point as kWycheproofPoint, compressed (Y is even: prefix 02).
  Bytes der = Hex(
      "3039301306072a8648ce3d020106082a8648ce3d030107032200022927b10512bae3eddcfe467828128bad29"
      "03269919f7086069c8c4df6c732838");
  auto key = EcPublicKey::FromSpkiDer(der);
  ASSERT_TRUE(key.has_value()) << key.error().message;
  EXPECT_EQ(HexEncode(key->ToPoint()), kWycheproofPoint);
  EXPECT_EQ(key->KeyId(), Sha256Hex(Hex(kWycheproofKeyDer)));
}

TEST(EcPublicKey, RejectsBadPointsAndEncodings) {
  std::string on_curve = kWycheproofPoint;
  const std::string bad_points[] = {
      // Wycheproof ecdh_secp256r1_ecpoint_test.json tcId 332, 333: not on the curve.
      "04" + std::string(128, '0'),
      "04" + std::string(127, '0') + "1",
      "05" + on_curve.substr(2),                 // wrong prefix
      on_curve.substr(0, 128),                   // truncated
      "022927b10512bae3eddcfe467828128bad2903269919f7086069c8c4df6c732838",  // compressed
      "00",                                      // point at infinity
      "",
  };
  for (const std::string& p : bad_points) {
    auto key = EcPublicKey::FromPoint(Hex(p));
    ASSERT_FALSE(key.has_value()) << p;
    EXPECT_EQ(key.error().code, ErrorCode::kMalformed);
  }
  Bytes flipped = Hex(on_curve);
  flipped[64] ^= 1;  // Y no longer matches X
  EXPECT_FALSE(EcPublicKey::FromPoint(flipped).has_value());

  Bytes der = Hex(kWycheproofKeyDer);
  Bytes trailing = der;
  trailing.push_back(0);
  EXPECT_FALSE(EcPublicKey::FromSpkiDer(trailing).has_value());
  EXPECT_FALSE(EcPublicKey::FromSpkiDer(Bytes(der.begin(), der.end() - 1)).has_value());
  EXPECT_FALSE(EcPublicKey::FromSpkiDer({}).has_value());
  EXPECT_FALSE(EcPublicKey::FromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                   .has_value());
  EXPECT_FALSE(EcPublicKey::FromPem("").has_value());
}

TEST(EcKeys, OnlyP256IsAccepted) {
  for (const char* curve : {"secp384r1", "secp256k1"}) {
    UniquePtr<EVP_PKEY> pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
    ASSERT_TRUE(pkey);
    EXPECT_FALSE(WrapPublicKey(pkey.get()).has_value()) << curve;
    EXPECT_FALSE(WrapPrivateKey(pkey.get()).has_value()) << curve;
  }
  UniquePtr<EVP_PKEY> ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  ASSERT_TRUE(ed);
  EXPECT_FALSE(WrapPublicKey(ed.get()).has_value());
  EXPECT_FALSE(WrapPrivateKey(ed.get()).has_value());
  // A public-only key is not a private key.
  auto pub = EcPublicKey::FromPoint(Hex(kWycheproofPoint));
  ASSERT_TRUE(pub.has_value());
  EXPECT_FALSE(WrapPrivateKey(RawPkey(*pub)).has_value());
}

TEST(EcPrivateKey, SignVerifyRoundTrip) {
  auto key = EcPrivateKey::Generate();
  ASSERT_TRUE(key.has_value());
  EcPublicKey pub = key->PublicKey();
  for (std::string_view msg : {"", "hello", "a longer message with some more bytes in it"}) {
    auto sig = key->Sign(AsBytes(msg));
    ASSERT_TRUE(sig.has_value());
    EXPECT_EQ(sig->size(), kEs256SignatureSize);
    EXPECT_TRUE(pub.Verify(AsBytes(msg), *sig).has_value());
  }
  auto other = EcPrivateKey::Generate();
  ASSERT_TRUE(other.has_value());
  EXPECT_FALSE(other->PublicKey() == pub);
  auto sig = key->Sign(AsBytes("m")).value();
  EXPECT_EQ(other->PublicKey().Verify(AsBytes("m"), sig).error().code, ErrorCode::kCryptoFailure);
}

TEST(EcPrivateKey, Pkcs8PemRoundTrip) {
  auto key = EcPrivateKey::Generate();
  ASSERT_TRUE(key.has_value());
  SecretBytes pem = key->ToPkcs8Pem();
  EXPECT_TRUE(AsString(pem.Reveal(SecretAccess{})).starts_with("-----BEGIN PRIVATE KEY-----\n"));
  auto again = EcPrivateKey::FromPkcs8Pem(pem);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_TRUE(again->PublicKey() == key->PublicKey());
  auto sig = again->Sign(AsBytes("x")).value();
  EXPECT_TRUE(key->PublicKey().Verify(AsBytes("x"), sig).has_value());

  EXPECT_FALSE(EcPrivateKey::FromPkcs8Pem(SecretBytes()).has_value());
  SecretBytes pub_pem(AsBytes(key->PublicKey().ToPem()), SecretAccess{});
  EXPECT_FALSE(EcPrivateKey::FromPkcs8Pem(pub_pem).has_value());
}

TEST(EcPrivateKey, EncryptedPemIsRefusedWithoutPrompting) {
  // A throwaway P-256 key encrypted under the passphrase "test".
  constexpr char kEncrypted[] =
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
      "MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAi0VCJhOEjK5AICCAAw\n"
      "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEELK3hwSI2euNMlhCHNFOIhQEgZDo\n"
      "JBWFlzod2Fi+HskxfDRMd9BiNDMZvr9P1Mz4CcYidqtolHRd8bkP4Jgg+H0TaQo+\n"
      "jR1AEO201RJJk6mNGvE71+dYluvtfScETZq4KYd2uu2xAeszWOubk7tb8rTVmaf6\n"
      "PBT/GYkFz/mluzvS/bw7XUkXKx0XK1UIaGcWOFfUg8Fdw5Pagy+6OWlCavgTFd0=\n"
      "-----END ENCRYPTED PRIVATE KEY-----\n";
  auto key = EcPrivateKey::FromPkcs8Pem(SecretBytes(AsBytes(kEncrypted), SecretAccess{}));
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code, ErrorCode::kInvalidArgument);
}

TEST(EcPrivateKey, FromScalarRejectsOutOfRange) {
  EXPECT_FALSE(EcPrivateKey::FromScalar(SecretBytes(32)).has_value());  // zero
  EXPECT_FALSE(EcPrivateKey::FromScalar(SecretBytes(31)).has_value());
  EXPECT_FALSE(EcPrivateKey::FromScalar(SecretBytes(33)).has_value());
  // The group order n, and n + 1.
  EXPECT_FALSE(EcPrivateKey::FromScalar(
                   SecretHex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"))
                   .has_value());
  EXPECT_FALSE(EcPrivateKey::FromScalar(
                   SecretHex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632552"))
                   .has_value());
  // n - 1 is the largest valid scalar.
  EXPECT_TRUE(EcPrivateKey::FromScalar(
                  SecretHex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550"))
                  .has_value());
}

// Wycheproof testvectors_v1/ecdh_secp256r1_ecpoint_test.json (C2SP/wycheproof).
TEST(EcPrivateKey, WycheproofEcdh) {
  struct {
    int tc_id;
    const char* pub;
    const char* priv;
    const char* shared;
  } vectors[] = {
      {1,
       "0462d5bd3372af75fe85a040715d0f502428e07046868b0bfdfa61d731afe44f26ac333a93a9e70a81cd5a"
       "95b5bf8d13990eb741c8c38872b4a07d275a014e30cf",
       "0612465c89a023ab17855b0a6bcebfd3febb53aef84138647b5352e02c10c346",
       "53020d908b0219328b658b525f26780e3ae12bcd952bb25a93bc0895e1714285"},
      {3,
       "0458fd4168a87795603e2b04390285bdca6e57de6027fe211dd9d25e2212d29e62080d36bd224d7405509"
       "295eed02a17150e03b314f96da37445b0d1d29377d12c",
       "0a0d622a47e48f6bc1038ace438c6f528aa00ad2bd1da5f13ee46bf5f633d71a",
       "0000000000000000000000000000000000000000000000000000000000000000"},
      {4,
       "04a1ecc24bf0d0053d23f5fd80ddf1735a1925039dc1176c581a7e795163c8b9ba2cb5a4e4d5109f45275"
       "75e3137b83d79a9bcb3faeff90d2aca2bed71bb523e7e",
       "0a0d622a47e48f6bc1038ace438c6f528aa00ad2bd1da5f13ee46bf5f633d71a",
       "ffffffff00000001000000000000000000000000fffffffffffffffffffffffc"},
  };
  for (const auto& v : vectors) {
    SCOPED_TRACE(v.tc_id);
    auto priv = EcPrivateKey::FromScalar(SecretHex(v.priv));
    auto pub = EcPublicKey::FromPoint(Hex(v.pub));
    ASSERT_TRUE(priv.has_value() && pub.has_value());
    auto shared = priv->Ecdh(*pub);
    ASSERT_TRUE(shared.has_value());
    EXPECT_EQ(HexEncode(shared->Reveal(SecretAccess{})), v.shared);
  }
}

TEST(EcPrivateKey, EcdhIsSymmetric) {
  auto a = EcPrivateKey::Generate().value();
  auto b = EcPrivateKey::Generate().value();
  auto ab = a.Ecdh(b.PublicKey());
  auto ba = b.Ecdh(a.PublicKey());
  ASSERT_TRUE(ab && ba);
  EXPECT_TRUE(*ab == *ba);
}

}  // namespace
}  // namespace sealdrop
