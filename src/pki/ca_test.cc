// The CA directory: layout, modes, issuing, revoking, refusals that leave the
// directory untouched, and interop with the openssl tool.
#include "pki/ca.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "base/encoding.h"
#include "pki/pki_test_util.h"

namespace sealdrop {
namespace {

using namespace pki_test;

// Every file under dir (except the lock) with its contents.
std::map<std::string, std::string> Snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    std::string rel = fs::relative(entry.path(), dir).string();
    if (rel == "lock") continue;
    files[rel] = entry.is_regular_file() ? ReadAll(entry.path()) : "<dir>";
  }
  return files;
}

std::vector<std::string> Entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

mode_t ModeOf(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class CaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = tmp_ / "ca";
    MakeCa(ca_, "Test Manufacturer Root");
  }

  Result<std::string> Issue(std::string_view csr, CertProfile profile = CertProfile::kDevice,
                            int days = 365) {
    CaIssueOptions options;
    options.profile = profile;
    options.days = days;
    return CaIssue(ca_, csr, options);
  }

  TempDir tmp_;
  fs::path ca_;
};

TEST_F(CaTest, InitCreatesTheDocumentedLayout) {
  EXPECT_EQ(Entries(ca_), (std::vector<std::string>{"ca.key", "ca.pem", "crl.pem", "issued", "lock",
                                                    "state.json"}));
  EXPECT_EQ(ModeOf(ca_), 0700u);
  EXPECT_EQ(ModeOf(ca_ / "ca.key"), 0600u);
  Certificate root = CaCert(ca_);
  EXPECT_TRUE(root.IsCa());
  EXPECT_EQ(root.SubjectCommonName(), "Test Manufacturer Root");
  EXPECT_TRUE(CaKey(ca_).PublicKey() == root.PublicKey());
  TrustStore store;
  ASSERT_TRUE(store.AddRootsPem(ReadAll(ca_ / "ca.pem")));
  EXPECT_TRUE(store.AddCrlPem(ReadAll(ca_ / "crl.pem")));
  auto listed = CaList(ca_);
  ASSERT_TRUE(listed) << listed.error().message;
  EXPECT_TRUE(listed->empty());
  // Nothing is left next to the CA: the temporary directory was renamed.
  EXPECT_EQ(Entries(tmp_.path()), (std::vector<std::string>{"ca"}));
}

TEST_F(CaTest, InitValidityFollowsDays) {
  fs::path short_lived = tmp_ / "short";
  ASSERT_TRUE(CaInit(short_lived, {.name = "Short", .days = 10}));
  auto root = CaCert(short_lived);
  auto now = std::chrono::system_clock::now();
  EXPECT_GT(root.NotAfter(), now + std::chrono::hours(24 * 10 - 1));
  EXPECT_LT(root.NotAfter(), now + std::chrono::hours(24 * 10 + 1));
}

TEST_F(CaTest, InitIntoAnExistingEmptyDirectoryWorks) {
  fs::path empty = tmp_ / "empty";
  fs::create_directory(empty);
  auto st = CaInit(empty, {.name = "Into Empty"});
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_TRUE(fs::exists(empty / "ca.pem"));
  EXPECT_EQ(ModeOf(empty / "ca.key"), 0600u);
}

TEST_F(CaTest, InitIntoANonEmptyDirectoryIsRefusedAndTouchesNothing) {
  fs::path busy = tmp_ / "busy";
  fs::create_directory(busy);
  WriteAll(busy / "notes.txt", "keep me");
  auto st = CaInit(busy, {.name = "Over Existing"});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message.find("not empty"), std::string::npos);
  EXPECT_EQ(Entries(busy), (std::vector<std::string>{"notes.txt"}));
  EXPECT_EQ(ReadAll(busy / "notes.txt"), "keep me");

  auto before = Snapshot(ca_);
  EXPECT_FALSE(CaInit(ca_, {.name = "Second Init"}));
  EXPECT_EQ(Snapshot(ca_), before);
  EXPECT_EQ(Entries(tmp_.path()), (std::vector<std::string>{"busy", "ca"}));
}

TEST_F(CaTest, InitRefusesBadOptionsWithoutCreatingAnything) {
  WriteAll(tmp_ / "a-file", "x");
  EXPECT_FALSE(CaInit(tmp_ / "a-file", {.name = "On A File"}));
  EXPECT_FALSE(CaInit(tmp_ / "n1", {.name = ""}));
  EXPECT_FALSE(CaInit(tmp_ / "n2", {.name = "bad\x01name"}));
  EXPECT_FALSE(CaInit(tmp_ / "n3", {.name = "ok", .days = 0}));
  EXPECT_FALSE(CaInit(tmp_ / "n4", {.name = "ok", .days = kMaxValidityDays + 1}));
  EXPECT_EQ(Entries(tmp_.path()), (std::vector<std::string>{"a-file", "ca"}));
}

TEST_F(CaTest, IssuesAndRecordsEachProfile) {
  EcPrivateKey identity = NewKey(), key_wrap = NewKey(), server = NewKey();
  auto a = Issue(DeviceCsr(identity, "SN-1", DeviceKeyRole::kIdentity, "dev one"));
  auto b = Issue(DeviceCsr(key_wrap, "SN-1", DeviceKeyRole::kKeyWrap, "dev one"));
  auto c =
      Issue(ServerCsr(server, {"sealdrop.example.com", "192.0.2.7"}), CertProfile::kServer, 90);
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b) << b.error().message;
  ASSERT_TRUE(c) << c.error().message;

  auto listed = CaList(ca_);
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->size(), 3u);
  const CaIssuedCert& first = (*listed)[0];
  const CaIssuedCert& second = (*listed)[1];
  const CaIssuedCert& third = (*listed)[2];
  EXPECT_EQ(first.profile, CertProfile::kDevice);
  EXPECT_EQ(first.role, DeviceKeyRole::kIdentity);
  EXPECT_EQ(first.device_serial, "SN-1");
  EXPECT_EQ(first.common_name, "dev one");
  EXPECT_EQ(first.key_id, identity.PublicKey().KeyId());
  EXPECT_EQ(second.role, DeviceKeyRole::kKeyWrap);
  EXPECT_EQ(third.profile, CertProfile::kServer);
  EXPECT_EQ(third.hosts, (std::vector<std::string>{"sealdrop.example.com", "192.0.2.7"}));
  EXPECT_FALSE(third.revoked);

  for (const auto& [entry, pem] : {std::pair{first, *a}, {second, *b}, {third, *c}}) {
    auto cert = Certificate::FromPem(pem);
    ASSERT_TRUE(cert);
    EXPECT_EQ(cert->SerialHex(), entry.serial_hex);
    EXPECT_EQ(cert->NotAfter(), entry.not_after);
    EXPECT_EQ(ReadAll(ca_ / "issued" / (entry.serial_hex + ".pem")), pem);
  }
}

// The TPM binding extension (cert.h): present only when asked for, read
// back from the certificate and state.json, verified like any device chain,
// and refused on a server certificate.
TEST_F(CaTest, TpmBindingIsCarriedAndRecorded) {
  const Bytes ek_hash(32, 0xab);
  CaIssueOptions tpm;
  tpm.tpm_ek_certificate_sha256 = ek_hash;
  EcPrivateKey bound = NewKey(), soft = NewKey(), server = NewKey();
  auto a = CaIssue(ca_, DeviceCsr(bound, "SN-T", DeviceKeyRole::kIdentity, "tpm dev"), tpm);
  auto b = Issue(DeviceCsr(soft, "SN-S", DeviceKeyRole::kIdentity, "soft dev"));
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b) << b.error().message;
  auto ca = Certificate::FromPem(*a), cb = Certificate::FromPem(*b);
  ASSERT_TRUE(ca && cb);
  EXPECT_EQ(ca->TpmEkCertificateSha256(), ek_hash);
  EXPECT_TRUE(cb->TpmEkCertificateSha256().empty());
  TrustStore store;
  ASSERT_TRUE(store.AddRootsPem(ReadAll(ca_ / "ca.pem")));
  EXPECT_TRUE(store.Verify({*ca}, CertProfile::kDevice, DeviceKeyRole::kIdentity,
                           std::chrono::system_clock::now()));
  auto listed = CaList(ca_);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].tpm_ek_certificate_sha256, HexEncode(ek_hash));
  EXPECT_EQ((*listed)[1].tpm_ek_certificate_sha256, "");
  tpm.profile = CertProfile::kServer;
  EXPECT_FALSE(CaIssue(ca_, ServerCsr(server, {"a.example"}), tpm));
  tpm.profile = CertProfile::kDevice;
  tpm.tpm_ek_certificate_sha256 = Bytes(31, 1);
  EXPECT_FALSE(CaIssue(ca_, DeviceCsr(NewKey(), "SN-U", DeviceKeyRole::kIdentity, "x"), tpm));
}

TEST_F(CaTest, OpensslVerifiesIssuedCertificatesAndHonoursTheCrl) {
  SEALDROP_REQUIRE_OPENSSL();
  auto device = Issue(DeviceCsr(NewKey(), "SN-OSSL"));
  auto server = Issue(ServerCsr(NewKey(), {"localhost"}), CertProfile::kServer);
  ASSERT_TRUE(device && server);
  WriteAll(tmp_ / "device.pem", *device);
  WriteAll(tmp_ / "server.pem", *server);
  std::string ca_pem = (ca_ / "ca.pem").string();

  auto plain =
      RunCommand({OPENSSL_BIN, "verify", "-CAfile", ca_pem, (tmp_ / "device.pem").string()});
  EXPECT_EQ(plain.exit_code, 0) << plain.out << plain.err;
  EXPECT_NE(plain.out.find("OK"), std::string::npos);

  auto strict_client = RunCommand({OPENSSL_BIN, "verify", "-x509_strict", "-purpose", "sslclient",
                                   "-CAfile", ca_pem, (tmp_ / "device.pem").string()});
  EXPECT_EQ(strict_client.exit_code, 0) << strict_client.out << strict_client.err;
  auto strict_server = RunCommand({OPENSSL_BIN, "verify", "-x509_strict", "-purpose", "sslserver",
                                   "-CAfile", ca_pem, (tmp_ / "server.pem").string()});
  EXPECT_EQ(strict_server.exit_code, 0) << strict_server.out << strict_server.err;

  auto with_crl = [&] {
    return RunCommand({OPENSSL_BIN, "verify", "-crl_check", "-CRLfile", (ca_ / "crl.pem").string(),
                       "-CAfile", ca_pem, (tmp_ / "device.pem").string()});
  };
  EXPECT_EQ(with_crl().exit_code, 0);
  ASSERT_TRUE(CaRevoke(ca_, Certificate::FromPem(*device)->SerialHex()));
  auto revoked = with_crl();
  EXPECT_NE(revoked.exit_code, 0);
  EXPECT_NE((revoked.out + revoked.err).find("revoked"), std::string::npos)
      << revoked.out << revoked.err;
}

TEST_F(CaTest, OpensslParsesTheCrl) {
  SEALDROP_REQUIRE_OPENSSL();
  auto text = [&] {
    return RunCommand({OPENSSL_BIN, "crl", "-in", (ca_ / "crl.pem").string(), "-noout", "-text"});
  };
  auto empty = text();
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_NE(empty.out.find("No Revoked Certificates"), std::string::npos) << empty.out;

  Certificate leaf = IssueDevice(ca_, "SN-CRL");
  ASSERT_TRUE(CaRevoke(ca_, leaf.SerialHex()));
  auto listed = text();
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::string upper = leaf.SerialHex();
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  EXPECT_NE(listed.out.find(upper), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("CRL Number"), std::string::npos);

  auto verify = RunCommand({OPENSSL_BIN, "crl", "-in", (ca_ / "crl.pem").string(), "-noout",
                            "-CAfile", (ca_ / "ca.pem").string()});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
}

TEST_F(CaTest, RevokeRecordsTheRevocation) {
  Certificate leaf = IssueDevice(ca_, "SN-R");
  ASSERT_TRUE(CaRevoke(ca_, leaf.SerialHex()));
  auto listed = CaList(ca_);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE((*listed)[0].revoked);
  auto now = std::chrono::system_clock::now();
  EXPECT_LE((*listed)[0].revoked_at, now);
  EXPECT_GT((*listed)[0].revoked_at, now - std::chrono::minutes(1));
}

TEST_F(CaTest, RevokeAcceptsTheSerialAsOpensslPrintsIt) {
  Certificate leaf = IssueDevice(ca_, "SN-FMT");
  std::string hex = leaf.SerialHex();
  std::string openssl_style;
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (i) openssl_style += ':';
    openssl_style += static_cast<char>(::toupper(hex[i]));
    openssl_style += static_cast<char>(::toupper(hex[i + 1]));
  }
  auto st = CaRevoke(ca_, "00" + openssl_style);
  EXPECT_TRUE(st) << st.error().message;
}

TEST_F(CaTest, RevokeOfAnUnknownSerialIsRefusedAndTouchesNothing) {
  IssueDevice(ca_, "SN-KNOWN");
  auto before = Snapshot(ca_);
  auto st = CaRevoke(ca_, "0123456789abcdef0123456789abcdef");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Snapshot(ca_), before);

  auto bad = CaRevoke(ca_, "not-hex");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(CaRevoke(ca_, ""));
  EXPECT_EQ(Snapshot(ca_), before);
}

TEST_F(CaTest, RevokingTwiceIsRefused) {
  Certificate leaf = IssueDevice(ca_, "SN-TWICE");
  ASSERT_TRUE(CaRevoke(ca_, leaf.SerialHex()));
  auto before = Snapshot(ca_);
  auto again = CaRevoke(ca_, leaf.SerialHex());
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("already revoked"), std::string::npos);
  EXPECT_EQ(Snapshot(ca_), before);
}

TEST_F(CaTest, ProfileMismatchesAreRefusedAndTouchNothing) {
  auto before = Snapshot(ca_);
  auto device_as_server = Issue(DeviceCsr(NewKey(), "SN-X"), CertProfile::kServer);
  ASSERT_FALSE(device_as_server);
  EXPECT_EQ(device_as_server.error().code, ErrorCode::kInvalidArgument);
  auto server_as_device = Issue(ServerCsr(NewKey(), {"a.example"}), CertProfile::kDevice);
  ASSERT_FALSE(server_as_device);
  EXPECT_EQ(server_as_device.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(Snapshot(ca_), before);
}

TEST_F(CaTest, CsrWithABadSelfSignatureIsRefused) {
  std::string csr = DeviceCsr(NewKey(), "SN-SIG");
  // Flip one base64 character inside the last line of the body, which
  // carries the signature.
  size_t end = csr.find("-----END");
  size_t at = csr.rfind('\n', end - 2) + 3;
  csr[at] = csr[at] == 'A' ? 'B' : 'A';
  auto before = Snapshot(ca_);
  auto result = Issue(csr);
  ASSERT_FALSE(result);
  EXPECT_TRUE(result.error().code == ErrorCode::kCryptoFailure ||
              result.error().code == ErrorCode::kMalformed)
      << result.error().message;
  EXPECT_EQ(Snapshot(ca_), before);
}

TEST_F(CaTest, GarbageCsrIsMalformed) {
  auto result = Issue("this is not a CSR");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kMalformed);
}

TEST_F(CaTest, AKeyServesOneRoleOnly) {
  EcPrivateKey key = NewKey();
  ASSERT_TRUE(Issue(DeviceCsr(key, "SN-K", DeviceKeyRole::kIdentity)));
  // Renewing the same role with the same key is fine.
  EXPECT_TRUE(Issue(DeviceCsr(key, "SN-K", DeviceKeyRole::kIdentity)));
  auto other_role = Issue(DeviceCsr(key, "SN-K", DeviceKeyRole::kKeyWrap));
  ASSERT_FALSE(other_role);
  EXPECT_EQ(other_role.error().code, ErrorCode::kRefused);
  EXPECT_FALSE(Issue(ServerCsr(key, {"a.example"}), CertProfile::kServer));

  auto ca_key = Issue(DeviceCsr(CaKey(ca_), "SN-CA"));
  ASSERT_FALSE(ca_key);
  EXPECT_EQ(ca_key.error().code, ErrorCode::kRefused);
}

TEST_F(CaTest, ValidityMayNotOutliveTheCa) {
  fs::path short_ca = tmp_ / "short";
  MakeCa(short_ca, "Short Root", 10);
  CaIssueOptions options;
  options.days = 365;
  auto result = CaIssue(short_ca, DeviceCsr(NewKey(), "SN-LONG"), options);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("outlive"), std::string::npos);
  options.days = 5;
  EXPECT_TRUE(CaIssue(short_ca, DeviceCsr(NewKey(), "SN-SHORT"), options));
  options.days = 0;
  EXPECT_FALSE(CaIssue(short_ca, DeviceCsr(NewKey(), "SN-ZERO"), options));
}

TEST_F(CaTest, CaKeyReadableByOthersIsRefused) {
  ASSERT_EQ(::chmod((ca_ / "ca.key").c_str(), 0644), 0);
  auto result = Issue(DeviceCsr(NewKey(), "SN-MODE"));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kRefused);
  EXPECT_NE(result.error().message.find("chmod 600"), std::string::npos);
}

TEST_F(CaTest, ALockedDirectoryIsRefused) {
  int fd = ::open((ca_ / "lock").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  auto issued = Issue(DeviceCsr(NewKey(), "SN-LOCK"));
  ASSERT_FALSE(issued);
  EXPECT_EQ(issued.error().code, ErrorCode::kUnavailable);
  auto revoked = CaRevoke(ca_, "01");
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.error().code, ErrorCode::kUnavailable);
  ::close(fd);
  EXPECT_TRUE(Issue(DeviceCsr(NewKey(), "SN-LOCK")));
}

TEST_F(CaTest, DamagedStateIsReported) {
  WriteAll(ca_ / "state.json", "{\"format\": \"sealdrop-ca-state/1\", \"issued\": 7}");
  auto listed = CaList(ca_);
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code, ErrorCode::kMalformed);
  EXPECT_NE(listed.error().message.find("state.json"), std::string::npos);
  EXPECT_FALSE(Issue(DeviceCsr(NewKey(), "SN-DMG")));
  WriteAll(ca_ / "state.json", "garbage");
  EXPECT_FALSE(CaList(ca_));
}

TEST_F(CaTest, NotACaDirectory) {
  auto missing = CaList(tmp_ / "nowhere");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  fs::create_directory(tmp_ / "plain");
  EXPECT_FALSE(CaIssue(tmp_ / "plain", DeviceCsr(NewKey(), "SN-1"), {}));
  EXPECT_FALSE(CaRevoke(tmp_ / "plain", "01"));
}

TEST_F(CaTest, RenewCrlKeepsTheListAndMovesNextUpdate) {
  Certificate leaf = IssueDevice(ca_, "SN-RENEW");
  ASSERT_TRUE(CaRevoke(ca_, leaf.SerialHex()));
  auto st = CaRenewCrl(ca_, 90);
  ASSERT_TRUE(st) << st.error().message;
  // Past the default 30 days, within the new 90.
  auto later = std::chrono::system_clock::now() + std::chrono::hours(24 * 60);
  auto result = StoreFor(ca_).Verify({leaf}, CertProfile::kDevice, DeviceKeyRole::kIdentity, later);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("was revoked"), std::string::npos)
      << result.error().message;
  EXPECT_FALSE(CaRenewCrl(ca_, 0));
}

}  // namespace
}  // namespace sealdrop
