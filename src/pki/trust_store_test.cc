// TrustStore::Verify: the good chains, and every reason a chain is refused,
// each with the sentence the user gets.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "pki/pki_internal.h"
#include "pki/pki_test_util.h"

namespace sealdrop {
namespace {

using namespace pki_test;
using std::chrono::hours;
using std::chrono::system_clock;

constexpr auto kDay = hours(24);

class TrustStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = tmp_ / "manufacturer";
    MakeCa(ca_, "Acme Devices Root CA");
  }

  Result<VerifiedLeaf> VerifyDevice(const std::vector<Certificate>& chain,
                                    DeviceKeyRole role = DeviceKeyRole::kIdentity,
                                    system_clock::time_point now = system_clock::now()) {
    return StoreFor(ca_).Verify(chain, CertProfile::kDevice, role, now);
  }

  // Expects failure with kUntrustedPeer and a message containing `phrase`.
  static void ExpectRefused(const Result<VerifiedLeaf>& result, const std::string& phrase) {
    ASSERT_FALSE(result) << "expected a refusal containing \"" << phrase << "\"";
    EXPECT_EQ(result.error().code, ErrorCode::kUntrustedPeer);
    EXPECT_NE(result.error().message.find(phrase), std::string::npos)
        << "message: " << result.error().message;
    EXPECT_EQ(result.error().message.find('\n'), std::string::npos);
  }

  // An intermediate CA under `issuer`, made the way a CA would make one.
  static Certificate Intermediate(const Certificate& issuer, const EcPrivateKey& issuer_key,
                                  const EcPrivateKey& key, const std::string& name) {
    pki_internal::CertSpec spec;
    spec.kind = pki_internal::CertSpec::Kind::kCa;
    spec.common_name = name;
    spec.not_before = system_clock::now() - hours(1);
    spec.not_after = system_clock::now() + 100 * kDay;
    auto cert = pki_internal::SignCertificate(spec, key.PublicKey(), &issuer, issuer_key);
    if (!cert) throw std::runtime_error(cert.error().message);
    return *cert;
  }

  static Certificate DeviceLeaf(const Certificate* issuer, const EcPrivateKey& issuer_key,
                                const EcPrivateKey& key, const std::string& serial) {
    pki_internal::CertSpec spec;
    spec.kind = pki_internal::CertSpec::Kind::kDevice;
    spec.common_name = "device " + serial;
    spec.serial_number = serial;
    spec.not_before = system_clock::now() - hours(1);
    spec.not_after = system_clock::now() + 30 * kDay;
    auto cert = pki_internal::SignCertificate(spec, key.PublicKey(), issuer, issuer_key);
    if (!cert) throw std::runtime_error(cert.error().message);
    return *cert;
  }

  TempDir tmp_;
  fs::path ca_;
};

TEST_F(TrustStoreTest, DeviceIdentityCertificateVerifies) {
  Certificate leaf = IssueDevice(ca_, "SN-0001", DeviceKeyRole::kIdentity);
  auto verified = VerifyDevice({leaf}, DeviceKeyRole::kIdentity);
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(verified->device_serial, "SN-0001");
  EXPECT_EQ(verified->leaf.SerialHex(), leaf.SerialHex());
}

TEST_F(TrustStoreTest, DeviceKeyWrapCertificateVerifies) {
  Certificate leaf = IssueDevice(ca_, "SN-0002", DeviceKeyRole::kKeyWrap);
  auto verified = VerifyDevice({leaf}, DeviceKeyRole::kKeyWrap);
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(verified->device_serial, "SN-0002");
}

TEST_F(TrustStoreTest, ServerCertificateVerifies) {
  fs::path vendor = tmp_ / "vendor";
  MakeCa(vendor, "Acme Vendor Root CA");
  Certificate leaf = IssueServer(vendor, {"sealdrop.example.com", "127.0.0.1", "::1"});
  auto verified = StoreFor(vendor).Verify({leaf}, CertProfile::kServer, DeviceKeyRole::kIdentity,
                                          system_clock::now());
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(verified->device_serial, "");
}

TEST_F(TrustStoreTest, PresentingTheRootInTheChainIsFine) {
  Certificate leaf = IssueDevice(ca_, "SN-0003");
  auto verified = VerifyDevice({leaf, CaCert(ca_)});
  ASSERT_TRUE(verified) << verified.error().message;
}

TEST_F(TrustStoreTest, VerifiesWithoutAnyCrlLoaded) {
  Certificate leaf = IssueDevice(ca_, "SN-0004");
  auto verified =
      StoreFor(ca_, /*with_crl=*/false)
          .Verify({leaf}, CertProfile::kDevice, DeviceKeyRole::kIdentity, system_clock::now());
  ASSERT_TRUE(verified) << verified.error().message;
}

TEST_F(TrustStoreTest, SelfSignedLeafIsNotTrusted) {
  EcPrivateKey key = NewKey();
  Certificate leaf = DeviceLeaf(nullptr, key, key, "SN-SELF");
  ExpectRefused(VerifyDevice({leaf}), "is not issued by a trusted manufacturer CA");
  ExpectRefused(VerifyDevice({leaf}), "self-signed");
}

TEST_F(TrustStoreTest, CertificateFromAnotherCaIsNotTrusted) {
  fs::path other = tmp_ / "other";
  MakeCa(other, "Some Other Root");
  Certificate leaf = IssueDevice(other, "SN-OTHER");
  ExpectRefused(VerifyDevice({leaf}), "is not issued by a trusted manufacturer CA");
  // Presenting the other root does not help: it is not a trust anchor.
  ExpectRefused(VerifyDevice({leaf, CaCert(other)}), "is not issued by a trusted manufacturer CA");
}

TEST_F(TrustStoreTest, ImpostorCaWithTheSameNameIsNotTrusted) {
  fs::path impostor = tmp_ / "impostor";
  MakeCa(impostor, "Acme Devices Root CA");
  Certificate leaf = IssueDevice(impostor, "SN-FAKE");
  ExpectRefused(VerifyDevice({leaf}), "is not issued by a trusted manufacturer CA");
}

TEST_F(TrustStoreTest, ServerProfileNamesTheVendorCa) {
  fs::path other = tmp_ / "other-vendor";
  MakeCa(other, "Other Vendor");
  Certificate leaf = IssueServer(other, {"example.org"});
  ExpectRefused(StoreFor(ca_).Verify({leaf}, CertProfile::kServer, DeviceKeyRole::kIdentity,
                                     system_clock::now()),
                "is not issued by a trusted vendor CA");
}

TEST_F(TrustStoreTest, ExpiredCertificateIsRefused) {
  Certificate leaf = IssueDevice(ca_, "SN-OLD", DeviceKeyRole::kIdentity, /*days=*/30,
                                 /*offset_days=*/-60);
  ExpectRefused(VerifyDevice({leaf}), "the certificate has expired");
}

TEST_F(TrustStoreTest, NotYetValidCertificateIsRefused) {
  Certificate leaf = IssueDevice(ca_, "SN-NEW", DeviceKeyRole::kIdentity, /*days=*/30,
                                 /*offset_days=*/10);
  ExpectRefused(VerifyDevice({leaf}), "the certificate is not yet valid");
}

TEST_F(TrustStoreTest, VerificationTimeIsTheGivenNow) {
  Certificate leaf = IssueDevice(ca_, "SN-TIME", DeviceKeyRole::kIdentity, /*days=*/30);
  TrustStore store = StoreFor(ca_, /*with_crl=*/false);
  auto now = system_clock::now();
  EXPECT_TRUE(
      store.Verify({leaf}, CertProfile::kDevice, DeviceKeyRole::kIdentity, now + 29 * kDay));
  ExpectRefused(
      store.Verify({leaf}, CertProfile::kDevice, DeviceKeyRole::kIdentity, now + 31 * kDay),
      "the certificate has expired");
  ExpectRefused(
      store.Verify({leaf}, CertProfile::kDevice, DeviceKeyRole::kIdentity, now - 2 * kDay),
      "the certificate is not yet valid");
}

TEST_F(TrustStoreTest, RevokedCertificateIsRefusedOnceTheNewCrlIsLoaded) {
  Certificate leaf = IssueDevice(ca_, "SN-CLONED");
  Certificate bystander = IssueDevice(ca_, "SN-GOOD");
  TrustStore before = StoreFor(ca_);
  ASSERT_TRUE(CaRevoke(ca_, leaf.SerialHex()));

  // The revocation reaches verifiers through the CRL, not by magic.
  EXPECT_TRUE(
      before.Verify({leaf}, CertProfile::kDevice, DeviceKeyRole::kIdentity, system_clock::now()));
  ExpectRefused(VerifyDevice({leaf}), "the certificate was revoked");
  EXPECT_TRUE(VerifyDevice({bystander}));
}

TEST_F(TrustStoreTest, AnOlderCrlLoadedLaterCannotHideARevocation) {
  Certificate leaf = IssueDevice(ca_, "SN-REVOKED");
  std::string old_crl = ReadAll(ca_ / "crl.pem");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a later thisUpdate
  ASSERT_TRUE(CaRevoke(ca_, leaf.SerialHex()));
  TrustStore store = StoreFor(ca_);
  ASSERT_TRUE(store.AddCrlPem(old_crl));
  ExpectRefused(
      store.Verify({leaf}, CertProfile::kDevice, DeviceKeyRole::kIdentity, system_clock::now()),
      "was revoked");
}

TEST_F(TrustStoreTest, CrlsApplyPerIssuer) {
  fs::path second = tmp_ / "second";
  MakeCa(second, "Second Manufacturer");
  Certificate revoked = IssueDevice(ca_, "SN-A");
  Certificate from_second = IssueDevice(second, "SN-B");
  ASSERT_TRUE(CaRevoke(ca_, revoked.SerialHex()));

  // Both roots trusted, only the first has a CRL loaded.
  TrustStore store = StoreFor(ca_);
  ASSERT_TRUE(store.AddRootsPem(ReadAll(second / "ca.pem")));
  EXPECT_EQ(store.root_count(), 2u);
  auto now = system_clock::now();
  auto ok = store.Verify({from_second}, CertProfile::kDevice, DeviceKeyRole::kIdentity, now);
  EXPECT_TRUE(ok) << ok.error().message;
  ExpectRefused(store.Verify({revoked}, CertProfile::kDevice, DeviceKeyRole::kIdentity, now),
                "was revoked");
}

TEST_F(TrustStoreTest, ExpiredCrlFailsChainsThroughItsIssuer) {
  ASSERT_TRUE(CaRenewCrl(ca_, 1));
  Certificate leaf = IssueDevice(ca_, "SN-STALE", DeviceKeyRole::kIdentity, 30);
  auto later = system_clock::now() + 3 * kDay;
  ExpectRefused(VerifyDevice({leaf}, DeviceKeyRole::kIdentity, later), "has expired");
  ExpectRefused(VerifyDevice({leaf}, DeviceKeyRole::kIdentity, later), "CRL");
  // Without the CRL the same chain is fine at that time.
  EXPECT_TRUE(
      StoreFor(ca_, false).Verify({leaf}, CertProfile::kDevice, DeviceKeyRole::kIdentity, later));
}

TEST_F(TrustStoreTest, ServerCertificateVerifiedAsDeviceHasTheWrongProfile) {
  Certificate server = IssueServer(ca_, {"sealdrop.example.com"});
  ExpectRefused(VerifyDevice({server}), "has the wrong profile/key usage");
}

TEST_F(TrustStoreTest, DeviceCertificateVerifiedAsServerHasTheWrongProfile) {
  Certificate device = IssueDevice(ca_, "SN-DEV");
  ExpectRefused(StoreFor(ca_).Verify({device}, CertProfile::kServer, DeviceKeyRole::kIdentity,
                                     system_clock::now()),
                "has the wrong profile/key usage");
}

TEST_F(TrustStoreTest, IdentityAndKeyWrapRolesAreNotInterchangeable) {
  Certificate identity = IssueDevice(ca_, "SN-ROLE", DeviceKeyRole::kIdentity);
  Certificate key_wrap = IssueDevice(ca_, "SN-ROLE", DeviceKeyRole::kKeyWrap);
  ExpectRefused(VerifyDevice({identity}, DeviceKeyRole::kKeyWrap),
                "has the wrong profile/key usage");
  ExpectRefused(VerifyDevice({key_wrap}, DeviceKeyRole::kIdentity),
                "has the wrong profile/key usage");
}

TEST_F(TrustStoreTest, CaCertificateAsLeafHasTheWrongProfile) {
  ExpectRefused(VerifyDevice({CaCert(ca_)}), "has the wrong profile/key usage");
}

TEST_F(TrustStoreTest, IntermediatesUpToTheLimitVerify) {
  Certificate root = CaCert(ca_);
  EcPrivateKey root_key = CaKey(ca_);
  EcPrivateKey k1 = NewKey(), k2 = NewKey(), leaf_key = NewKey();
  Certificate i1 = Intermediate(root, root_key, k1, "Intermediate 1");
  Certificate i2 = Intermediate(i1, k1, k2, "Intermediate 2");
  Certificate leaf = DeviceLeaf(&i2, k2, leaf_key, "SN-DEEP");
  auto verified = VerifyDevice({leaf, i2, i1});
  ASSERT_TRUE(verified) << verified.error().message;
  // A missing intermediate leaves the leaf without a trusted issuer.
  ExpectRefused(VerifyDevice({leaf, i2}), "is not issued by a trusted manufacturer CA");
}

TEST_F(TrustStoreTest, ChainLongerThanTheLimitIsRefused) {
  Certificate root = CaCert(ca_);
  EcPrivateKey root_key = CaKey(ca_);
  EcPrivateKey k1 = NewKey(), k2 = NewKey(), k3 = NewKey(), leaf_key = NewKey();
  Certificate i1 = Intermediate(root, root_key, k1, "Intermediate 1");
  Certificate i2 = Intermediate(i1, k1, k2, "Intermediate 2");
  Certificate i3 = Intermediate(i2, k2, k3, "Intermediate 3");
  Certificate leaf = DeviceLeaf(&i3, k3, leaf_key, "SN-TOO-DEEP");
  // Four presented, five once the root is added.
  ExpectRefused(VerifyDevice({leaf, i3, i2, i1}), "chain is too long");
  // Five presented.
  ExpectRefused(VerifyDevice({leaf, i3, i2, i1, root}), "chain is too long");
}

TEST_F(TrustStoreTest, EmptyChainIsRefused) {
  auto result = VerifyDevice({});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kUntrustedPeer);
}

TEST_F(TrustStoreTest, EmptyStoreTrustsNothing) {
  Certificate leaf = IssueDevice(ca_, "SN-0005");
  TrustStore empty;
  EXPECT_EQ(empty.root_count(), 0u);
  ExpectRefused(
      empty.Verify({leaf}, CertProfile::kDevice, DeviceKeyRole::kIdentity, system_clock::now()),
      "is not issued by a trusted manufacturer CA");
}

TEST_F(TrustStoreTest, OnlySelfSignedCaCertificatesCanBeRoots) {
  TrustStore store;
  Certificate leaf = IssueDevice(ca_, "SN-0006");
  auto st = store.AddRootsPem(leaf.ToPem());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);

  EcPrivateKey k1 = NewKey();
  Certificate intermediate = Intermediate(CaCert(ca_), CaKey(ca_), k1, "Not A Root");
  st = store.AddRootsPem(intermediate.ToPem());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);

  // A bundle with one bad entry adds nothing.
  st = store.AddRootsPem(ReadAll(ca_ / "ca.pem") + leaf.ToPem());
  ASSERT_FALSE(st);
  EXPECT_EQ(store.root_count(), 0u);

  ASSERT_TRUE(store.AddRootsPem(ReadAll(ca_ / "ca.pem")));
  ASSERT_TRUE(store.AddRootsPem(ReadAll(ca_ / "ca.pem")));
  EXPECT_EQ(store.root_count(), 1u);
}

TEST_F(TrustStoreTest, CrlMustBeSignedByATrustedRoot) {
  fs::path other = tmp_ / "other";
  MakeCa(other, "Other Root");
  TrustStore store = StoreFor(ca_, false);
  auto st = store.AddCrlPem(ReadAll(other / "crl.pem"));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);

  // Same name, other key.
  fs::path impostor = tmp_ / "impostor";
  MakeCa(impostor, "Acme Devices Root CA");
  EXPECT_FALSE(store.AddCrlPem(ReadAll(impostor / "crl.pem")));

  EXPECT_FALSE(store.AddCrlPem("not a crl"));
  EXPECT_FALSE(store.AddCrlPem(ReadAll(ca_ / "ca.pem")));
  std::string crl = ReadAll(ca_ / "crl.pem");
  EXPECT_FALSE(store.AddCrlPem(crl.substr(0, crl.size() / 2)));
  EXPECT_TRUE(store.AddCrlPem(crl));
}

TEST_F(TrustStoreTest, TamperedCrlIsRefused) {
  TrustStore store = StoreFor(ca_, false);
  auto blocks = pki_internal::ParsePemBlocks(ReadAll(ca_ / "crl.pem"), "crl", kMaxPemFileSize);
  ASSERT_TRUE(blocks);
  Bytes der = (*blocks)[0].der;
  der.back() ^= 0x01;  // inside the signature
  auto st = store.AddCrlPem(pki_internal::EncodePem("X509 CRL", der));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(TrustStoreTest, ConcurrentVerificationsShareOneStore) {
  Certificate good = IssueDevice(ca_, "SN-T1");
  Certificate revoked = IssueDevice(ca_, "SN-T2");
  ASSERT_TRUE(CaRevoke(ca_, revoked.SerialHex()));
  const TrustStore store = StoreFor(ca_);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        auto now = system_clock::now();
        if (!store.Verify({good}, CertProfile::kDevice, DeviceKeyRole::kIdentity, now)) ++wrong;
        auto bad = store.Verify({revoked}, CertProfile::kDevice, DeviceKeyRole::kIdentity, now);
        if (bad || bad.error().message.find("was revoked") == std::string::npos) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(TrustStoreTest, TamperedLeafIsRefused) {
  Certificate leaf = IssueDevice(ca_, "SN-0007");
  Bytes der = leaf.ToDer();
  // Somewhere inside the subject: the serial number string.
  std::string text = ToString(der);
  size_t at = text.find("SN-0007");
  ASSERT_NE(at, std::string::npos);
  der[at + 6] = '8';
  auto tampered = Certificate::FromDer(der);
  ASSERT_TRUE(tampered) << tampered.error().message;
  ExpectRefused(VerifyDevice({*tampered}), "is not issued by a trusted manufacturer CA");
}

}  // namespace
}  // namespace sealdrop
