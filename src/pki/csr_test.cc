// CSRs: what MakeCsrPem produces, what it refuses, and how the CA side
// (ParseCsrPem) treats hostile requests.
#include <gtest/gtest.h>

#include "pki/pki_internal.h"
#include "pki/pki_test_util.h"

namespace sealdrop {
namespace {

using namespace pki_test;
using pki_internal::ParseCsrPem;

TEST(CsrTest, DeviceCsrCarriesSerialAndRole) {
  EcPrivateKey key = NewKey();
  for (DeviceKeyRole role : {DeviceKeyRole::kIdentity, DeviceKeyRole::kKeyWrap}) {
    auto parsed = ParseCsrPem(DeviceCsr(key, "SN-77", role, "dev 77"));
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->common_name, "dev 77");
    EXPECT_EQ(parsed->serial_number, "SN-77");
    EXPECT_TRUE(parsed->hosts.empty());
    ASSERT_TRUE(parsed->key_usage);
    EXPECT_EQ(*parsed->key_usage, role == DeviceKeyRole::kIdentity ? uint32_t{KU_DIGITAL_SIGNATURE}
                                                                   : uint32_t{KU_KEY_AGREEMENT});
    EXPECT_TRUE(parsed->key == key.PublicKey());
  }
}

TEST(CsrTest, ServerCsrCarriesHosts) {
  auto parsed = ParseCsrPem(ServerCsr(NewKey(), {"a.example.com", "10.0.0.1", "fe80::1"}));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->serial_number, "");
  EXPECT_EQ(parsed->hosts, (std::vector<std::string>{"a.example.com", "10.0.0.1", "fe80::1"}));
}

TEST(CsrTest, MakeCsrPemRefusesBadRequests) {
  EcPrivateKey key = NewKey();
  auto refused = [&](CsrRequest request) {
    auto csr = MakeCsrPem(key, request);
    EXPECT_FALSE(csr);
    if (!csr) {
      EXPECT_EQ(csr.error().code, ErrorCode::kInvalidArgument);
    }
  };
  refused({.common_name = "x"});  // neither serial nor hosts
  refused({.common_name = "x", .serial_number = "SN-1", .hosts = {"a.example"}});  // both
  refused({.common_name = "", .serial_number = "SN-1"});
  refused({.common_name = std::string(65, 'a'), .serial_number = "SN-1"});
  refused({.common_name = "bad\nname", .serial_number = "SN-1"});
  refused({.common_name = "x", .serial_number = "SN 1"});
  refused({.common_name = "x", .serial_number = "SN_1"});
  refused({.common_name = "x", .serial_number = std::string(65, '1')});
  refused({.common_name = "x", .hosts = {"bad host"}});
  refused({.common_name = "x", .hosts = {"-bad.example"}});
  refused({.common_name = "x", .hosts = {"a,DNS:evil.example"}});
  refused({.common_name = "x", .hosts = {""}});
  refused({.common_name = "x", .hosts = {"a.example"}, .role = DeviceKeyRole::kKeyWrap});
}

TEST(CsrTest, BadSelfSignatureIsRefused) {
  std::string csr = DeviceCsr(NewKey(), "SN-SIG");
  auto blocks = pki_internal::ParsePemBlocks(csr, "csr", kMaxCertDerSize);
  ASSERT_TRUE(blocks);
  Bytes der = (*blocks)[0].der;
  // The last byte belongs to the ECDSA signature's s value.
  der.back() ^= 0x01;
  auto parsed = ParseCsrPem(pki_internal::EncodePem("CERTIFICATE REQUEST", der));
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ErrorCode::kCryptoFailure);
  EXPECT_NE(parsed.error().message.find("self-signature"), std::string::npos);
}

TEST(CsrTest, SwappedPublicKeyIsRefused) {
  // Someone else's public key in a request signed by another key: the CA
  // must not certify a key whose holder did not sign.
  std::string csr = DeviceCsr(NewKey(), "SN-SWAP");
  auto blocks = pki_internal::ParsePemBlocks(csr, "csr", kMaxCertDerSize);
  ASSERT_TRUE(blocks);
  const unsigned char* p = (*blocks)[0].der.data();
  UniquePtr<X509_REQ> req(d2i_X509_REQ(nullptr, &p, static_cast<long>((*blocks)[0].der.size())));
  ASSERT_TRUE(req);
  EcPrivateKey victim = NewKey();
  ASSERT_EQ(X509_REQ_set_pubkey(req.get(), RawPkey(victim.PublicKey())), 1);
  unsigned char* der = nullptr;
  int n = i2d_X509_REQ(req.get(), &der);
  ASSERT_GT(n, 0);
  Bytes bytes(der, der + n);
  OPENSSL_free(der);
  auto parsed = ParseCsrPem(pki_internal::EncodePem("CERTIFICATE REQUEST", bytes));
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ErrorCode::kCryptoFailure);
}

TEST(CsrTest, DamagedCsrsAreMalformed) {
  std::string csr = DeviceCsr(NewKey(), "SN-DMG");
  for (const std::string& bad :
       {std::string(), std::string("garbage"), csr.substr(0, csr.size() / 2),
        csr + csr,  // two requests
        ReadAll("/dev/null")}) {
    auto parsed = ParseCsrPem(bad);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().code, ErrorCode::kMalformed) << parsed.error().message;
  }
  auto huge = ParseCsrPem(std::string(kMaxPemFileSize + 1, 'A'));
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, ErrorCode::kTooLarge);
}

TEST(CsrTest, CsrFromTheOpensslToolIsAccepted) {
  SEALDROP_REQUIRE_OPENSSL();
  TempDir tmp;
  fs::path key = tmp / "dev.key";
  fs::path csr = tmp / "dev.csr";
  auto gen = RunCommand(
      {OPENSSL_BIN, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key.string()});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto req = RunCommand({OPENSSL_BIN, "req", "-new", "-key", key.string(), "-subj",
                         "/CN=openssl device/serialNumber=SN-OSSL", "-addext",
                         "keyUsage=critical,keyAgreement", "-out", csr.string()});
  ASSERT_EQ(req.exit_code, 0) << req.err;
  auto parsed = ParseCsrPem(ReadAll(csr));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->serial_number, "SN-OSSL");
  EXPECT_EQ(parsed->key_usage, uint32_t{KU_KEY_AGREEMENT});
}

TEST(CsrTest, OpensslAcceptsOurCsrs) {
  SEALDROP_REQUIRE_OPENSSL();
  TempDir tmp;
  WriteAll(tmp / "server.csr", ServerCsr(NewKey(), {"sealdrop.example.com"}));
  auto verify =
      RunCommand({OPENSSL_BIN, "req", "-verify", "-noout", "-in", (tmp / "server.csr").string()});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
}

}  // namespace
}  // namespace sealdrop
