// Certificate parsing: round trips, accessors, and hostile input (flipped,
// truncated, garbage and oversized PEM and DER).
#include "pki/cert.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "crypto/random.h"
#include "pki/pki_internal.h"
#include "pki/pki_test_util.h"

namespace sealdrop {
namespace {

using namespace pki_test;
using std::chrono::system_clock;

class CertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeCa(tmp_ / "ca", "Cert Test Root");
    key_ = NewKey();
    CaIssueOptions options;
    auto pem = CaIssue(tmp_ / "ca", DeviceCsr(*key_, "SN-42", DeviceKeyRole::kIdentity, "dev 42"),
                       options);
    ASSERT_TRUE(pem) << pem.error().message;
    pem_ = *pem;
    store_.emplace(StoreFor(tmp_ / "ca"));
  }

  Certificate Leaf() const { return *Certificate::FromPem(pem_); }

  // The base64 body of the PEM, between the header and footer lines.
  std::pair<size_t, size_t> BodyRange() const {
    size_t begin = pem_.find('\n') + 1;
    size_t end = pem_.find("-----END");
    return {begin, end};
  }

  // Either the bytes do not parse, or what they parse to does not verify.
  void ExpectRejected(const Result<Certificate>& parsed, const std::string& what) {
    if (!parsed) {
      EXPECT_TRUE(parsed.error().code == ErrorCode::kMalformed ||
                  parsed.error().code == ErrorCode::kTooLarge)
          << what << ": " << parsed.error().message;
      return;
    }
    auto verified = store_->Verify({*parsed}, CertProfile::kDevice, DeviceKeyRole::kIdentity,
                                   system_clock::now());
    EXPECT_FALSE(verified) << what << " parsed and verified";
  }

  TempDir tmp_;
  std::optional<EcPrivateKey> key_;
  std::string pem_;
  std::optional<TrustStore> store_;
};

TEST_F(CertTest, AccessorsDescribeTheIssuedCertificate) {
  Certificate cert = Leaf();
  EXPECT_EQ(cert.SubjectCommonName(), "dev 42");
  EXPECT_EQ(cert.SubjectSerialNumber(), "SN-42");
  EXPECT_FALSE(cert.IsCa());
  EXPECT_TRUE(cert.PublicKey() == key_->PublicKey());
  std::string serial = cert.SerialHex();
  EXPECT_EQ(serial.size(), 32u);
  EXPECT_EQ(serial.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_LT(serial[0], '8') << "the serial must be positive";
  auto now = system_clock::now();
  EXPECT_LT(cert.NotBefore(), now);
  EXPECT_GT(cert.NotBefore(), now - std::chrono::hours(2));
  EXPECT_GT(cert.NotAfter(), now + std::chrono::hours(24 * 364));
  EXPECT_LT(cert.NotAfter(), now + std::chrono::hours(24 * 366));

  Certificate root = CaCert(tmp_ / "ca");
  EXPECT_TRUE(root.IsCa());
  EXPECT_EQ(root.SubjectCommonName(), "Cert Test Root");
  EXPECT_EQ(root.SubjectSerialNumber(), "");
}

TEST_F(CertTest, SerialsAreRandom) {
  std::string first = Leaf().SerialHex();
  std::string second = IssueDevice(tmp_ / "ca", "SN-43").SerialHex();
  EXPECT_NE(first, second);
}

TEST_F(CertTest, PemAndDerRoundTrip) {
  Certificate cert = Leaf();
  EXPECT_EQ(cert.ToPem(), pem_);
  auto from_der = Certificate::FromDer(cert.ToDer());
  ASSERT_TRUE(from_der) << from_der.error().message;
  EXPECT_EQ(from_der->ToDer(), cert.ToDer());
  EXPECT_EQ(from_der->SerialHex(), cert.SerialHex());
}

TEST_F(CertTest, BundlesParseInOrderAndFromPemWantsExactlyOne) {
  std::string root_pem = ReadAll(tmp_ / "ca" / "ca.pem");
  std::string bundle = "leading text is ignored, as openssl does\n" + pem_ + root_pem;
  auto all = Certificate::AllFromPem(bundle);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].SubjectCommonName(), "dev 42");
  EXPECT_EQ((*all)[1].SubjectCommonName(), "Cert Test Root");

  auto one = Certificate::FromPem(bundle);
  ASSERT_FALSE(one);
  EXPECT_EQ(one.error().code, ErrorCode::kMalformed);
}

TEST_F(CertTest, OtherPemBlocksAreRefused) {
  SecretBytes key_pem = key_->ToPkcs8Pem();
  std::string with_key = pem_ + ToString(key_pem.Reveal(SecretAccess{}));
  auto parsed = Certificate::AllFromPem(with_key);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ErrorCode::kMalformed);
  EXPECT_NE(parsed.error().message.find("PRIVATE KEY"), std::string::npos);

  std::string csr = DeviceCsr(NewKey(), "SN-1");
  EXPECT_FALSE(Certificate::FromPem(csr));
}

TEST_F(CertTest, FlippedPemCharactersNeverYieldAValidCertificate) {
  auto [begin, end] = BodyRange();
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  int positions = 0;
  for (size_t i = begin; i < end; i += 7) {
    if (pem_[i] == '\n' || pem_[i] == '=') continue;
    std::string damaged = pem_;
    size_t k = kAlphabet.find(damaged[i]);
    damaged[i] = kAlphabet[(k + 17) % kAlphabet.size()];
    ExpectRejected(Certificate::FromPem(damaged), "flip at " + std::to_string(i));
    ++positions;
  }
  EXPECT_GT(positions, 50);
}

TEST_F(CertTest, FlippedDerBytesNeverYieldAValidCertificate) {
  Bytes der = Leaf().ToDer();
  for (size_t i = 0; i < der.size(); ++i) {
    Bytes damaged = der;
    damaged[i] ^= 0x01;
    ExpectRejected(Certificate::FromDer(damaged), "DER flip at " + std::to_string(i));
  }
}

TEST_F(CertTest, TruncatedPemIsMalformed) {
  auto [begin, end] = BodyRange();
  for (size_t cut : {size_t{0}, size_t{10}, begin, begin + 40, (begin + end) / 2, end - 1, end + 5,
                     pem_.size() - 3}) {
    auto parsed = Certificate::FromPem(pem_.substr(0, cut));
    ASSERT_FALSE(parsed) << "cut at " << cut;
    EXPECT_EQ(parsed.error().code, ErrorCode::kMalformed) << "cut at " << cut;
  }
}

TEST_F(CertTest, TruncatedDerIsMalformed) {
  Bytes der = Leaf().ToDer();
  for (size_t cut = 0; cut < der.size(); cut += 13) {
    auto parsed = Certificate::FromDer(ByteView(der.data(), cut));
    ASSERT_FALSE(parsed) << "cut at " << cut;
    EXPECT_EQ(parsed.error().code, ErrorCode::kMalformed);
  }
}

TEST_F(CertTest, TrailingDerBytesAreMalformed) {
  Bytes der = Leaf().ToDer();
  der.push_back(0x00);
  auto parsed = Certificate::FromDer(der);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ErrorCode::kMalformed);
}

TEST_F(CertTest, GarbageIsMalformed) {
  for (const std::string& garbage :
       {std::string(), std::string("hello"),
        std::string("-----BEGIN CERTIFICATE-----\n!!!!\n"
                    "-----END CERTIFICATE-----\n"),
        std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        std::string("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
        ToString(RandomBytes(300))}) {
    auto parsed = Certificate::FromPem(garbage);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().code, ErrorCode::kMalformed);
    auto der = Certificate::FromDer(AsBytes(garbage));
    ASSERT_FALSE(der);
    EXPECT_EQ(der.error().code, ErrorCode::kMalformed);
  }
}

TEST_F(CertTest, EncryptedPemHeadersAreRefused) {
  std::string headed = pem_;
  headed.insert(BodyRange().first, "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n");
  auto parsed = Certificate::FromPem(headed);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ErrorCode::kMalformed);
}

TEST_F(CertTest, OversizedInputIsTooLarge) {
  Bytes big_der(kMaxCertDerSize + 1, 0x30);
  auto der = Certificate::FromDer(big_der);
  ASSERT_FALSE(der);
  EXPECT_EQ(der.error().code, ErrorCode::kTooLarge);

  std::string big_pem = pem_ + std::string(kMaxPemFileSize, '#');
  auto pem = Certificate::AllFromPem(big_pem);
  ASSERT_FALSE(pem);
  EXPECT_EQ(pem.error().code, ErrorCode::kTooLarge);

  // A single PEM block whose DER exceeds the certificate limit.
  std::string block = pki_internal::EncodePem("CERTIFICATE", Bytes(kMaxCertDerSize + 100, 0x41));
  auto huge_block = Certificate::FromPem(block);
  ASSERT_FALSE(huge_block);
  EXPECT_EQ(huge_block.error().code, ErrorCode::kTooLarge);
}

TEST_F(CertTest, KeysOtherThanP256AreRefused) {
  // A self-signed P-384 certificate made directly with OpenSSL.
  UniquePtr<EVP_PKEY> p384(EVP_EC_gen("P-384"));
  ASSERT_TRUE(p384);
  UniquePtr<X509> x(X509_new());
  ASSERT_TRUE(x);
  X509_set_version(x.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 7);
  X509_NAME_add_entry_by_NID(X509_get_subject_name(x.get()), NID_commonName, MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("p384"), -1, -1, 0);
  X509_set_issuer_name(x.get(), X509_get_subject_name(x.get()));
  X509_gmtime_adj(X509_getm_notBefore(x.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600);
  X509_set_pubkey(x.get(), p384.get());
  ASSERT_GT(X509_sign(x.get(), p384.get(), EVP_sha384()), 0);
  unsigned char* der = nullptr;
  int n = i2d_X509(x.get(), &der);
  ASSERT_GT(n, 0);
  Bytes bytes(der, der + n);
  OPENSSL_free(der);
  auto parsed = Certificate::FromDer(bytes);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ErrorCode::kMalformed);
  EXPECT_NE(parsed.error().message.find("P-256"), std::string::npos);
}

TEST_F(CertTest, WrapX509SharesTheSameChecks) {
  Certificate cert = Leaf();
  auto wrapped = WrapX509(RawX509(cert));
  ASSERT_TRUE(wrapped) << wrapped.error().message;
  EXPECT_EQ(wrapped->ToDer(), cert.ToDer());
  EXPECT_FALSE(WrapX509(nullptr));
}

}  // namespace
}  // namespace sealdrop
