// The sealdrop-ca binary end to end: init, issue, revoke, list, and what the
// user sees when the input is wrong (one line on stderr, exit 1 or 2).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "pki/pki_test_util.h"

namespace sealdrop {
namespace {

using namespace pki_test;

CommandResult Ca(std::vector<std::string> args) {
  args.insert(args.begin(), SEALDROP_CA_BIN);
  return RunCommand(args);
}

// One line, prefixed with the program name.
void ExpectOneLineError(const CommandResult& r, int exit_code, const std::string& phrase) {
  EXPECT_EQ(r.exit_code, exit_code) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.rfind("sealdrop-ca: ", 0), 0u) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_NE(r.err.find(phrase), std::string::npos) << r.err;
}

class CaCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = (tmp_ / "ca").string();
    auto init = Ca({"init", ca_, "--name", "CLI Test Root", "--days", "1000"});
    ASSERT_EQ(init.exit_code, 0) << init.err;
    WriteAll(tmp_ / "device.csr", DeviceCsr(NewKey(), "SN-CLI", DeviceKeyRole::kKeyWrap));
    WriteAll(tmp_ / "server.csr", ServerCsr(NewKey(), {"localhost", "127.0.0.1"}));
  }

  TempDir tmp_;
  std::string ca_;
};

TEST_F(CaCliTest, InitIssueRevokeList) {
  std::string out = (tmp_ / "device.pem").string();
  auto issue = Ca({"issue", ca_, "--csr", (tmp_ / "device.csr").string(), "--profile", "device",
                   "--days", "30", "--out", out});
  ASSERT_EQ(issue.exit_code, 0) << issue.err;
  EXPECT_TRUE(issue.err.empty()) << issue.err;
  auto cert = Certificate::FromPem(ReadAll(out));
  ASSERT_TRUE(cert) << cert.error().message;
  EXPECT_EQ(cert->SubjectSerialNumber(), "SN-CLI");
  auto verified = StoreFor(ca_).Verify({*cert}, CertProfile::kDevice, DeviceKeyRole::kKeyWrap,
                                       std::chrono::system_clock::now());
  EXPECT_TRUE(verified) << verified.error().message;

  std::string server_out = (tmp_ / "server.pem").string();
  auto server = Ca({"issue", ca_, "--csr", (tmp_ / "server.csr").string(), "--profile", "server",
                    "--out", server_out});
  ASSERT_EQ(server.exit_code, 0) << server.err;

  auto list = Ca({"list", ca_});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find(cert->SerialHex()), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("device/key-wrap"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("server"), std::string::npos) << list.out;

  std::string crl_before = ReadAll(tmp_ / "ca" / "crl.pem");
  auto revoke = Ca({"revoke", ca_, "--serial", cert->SerialHex()});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  EXPECT_NE(ReadAll(tmp_ / "ca" / "crl.pem"), crl_before);
  auto refused = StoreFor(ca_).Verify({*cert}, CertProfile::kDevice, DeviceKeyRole::kKeyWrap,
                                      std::chrono::system_clock::now());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("was revoked"), std::string::npos);

  auto json = Ca({"list", ca_, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto parsed = nlohmann::json::parse(json.out);
  ASSERT_TRUE(parsed.is_array());
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[0]["serial"], cert->SerialHex());
  EXPECT_EQ(parsed[0]["profile"], "device");
  EXPECT_EQ(parsed[0]["role"], "key-wrap");
  EXPECT_EQ(parsed[0]["revoked"], true);
  EXPECT_TRUE(parsed[0].contains("revoked_at"));
  EXPECT_EQ(parsed[1]["profile"], "server");
  EXPECT_EQ(parsed[1]["revoked"], false);
  EXPECT_EQ(parsed[1]["hosts"], (nlohmann::json{"localhost", "127.0.0.1"}));

  auto crl = Ca({"crl", ca_, "--days", "7"});
  EXPECT_EQ(crl.exit_code, 0) << crl.err;
}

TEST_F(CaCliTest, HelpIsAvailable) {
  auto help = Ca({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* command : {"init", "issue", "revoke", "list"})
    EXPECT_NE(help.out.find(command), std::string::npos) << help.out;
  auto issue_help = Ca({"issue", "--help"});
  EXPECT_EQ(issue_help.exit_code, 0);
  EXPECT_NE(issue_help.out.find("--profile"), std::string::npos) << issue_help.out;
}

TEST_F(CaCliTest, UsageErrorsExitWithTwo) {
  ExpectOneLineError(Ca({}), 2, "no command");
  ExpectOneLineError(Ca({"frobnicate"}), 2, "unknown command");
  ExpectOneLineError(Ca({"init", (tmp_ / "new").string()}), 2, "--name");
  ExpectOneLineError(Ca({"issue", ca_, "--csr", (tmp_ / "device.csr").string(), "--profile",
                         "toaster", "--out", (tmp_ / "x.pem").string()}),
                     2, "--profile");
  ExpectOneLineError(Ca({"init", (tmp_ / "new").string(), "--name", "x", "--days", "0"}), 2,
                     "--days");
  ExpectOneLineError(Ca({"revoke", ca_}), 2, "--serial");
  EXPECT_FALSE(fs::exists(tmp_ / "new"));
  EXPECT_FALSE(fs::exists(tmp_ / "x.pem"));
}

TEST_F(CaCliTest, BadInputFailsWithOneSentenceAndNoPartialState) {
  WriteAll(tmp_ / "garbage.csr", "this is not a certificate request");
  std::string out = (tmp_ / "never.pem").string();
  ExpectOneLineError(Ca({"issue", ca_, "--csr", (tmp_ / "garbage.csr").string(), "--profile",
                         "device", "--out", out}),
                     1, "CSR");
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(fs::is_empty(tmp_ / "ca" / "issued"));

  ExpectOneLineError(Ca({"issue", ca_, "--csr", (tmp_ / "server.csr").string(), "--profile",
                         "device", "--out", out}),
                     1, "device");
  EXPECT_FALSE(fs::exists(out));

  ExpectOneLineError(Ca({"issue", ca_, "--csr", (tmp_ / "device.csr").string(), "--profile",
                         "device", "--out", (tmp_ / "no-such-dir" / "x.pem").string()}),
                     1, "does not exist");
  EXPECT_TRUE(fs::is_empty(tmp_ / "ca" / "issued"));

  ExpectOneLineError(Ca({"issue", ca_, "--csr", (tmp_ / "missing.csr").string(), "--profile",
                         "device", "--out", out}),
                     1, "missing.csr");

  ExpectOneLineError(Ca({"init", ca_, "--name", "Again"}), 1, "not empty");
  ExpectOneLineError(Ca({"revoke", ca_, "--serial", "abcdef0123"}), 4, "no certificate");
  ExpectOneLineError(Ca({"revoke", ca_, "--serial", "xyz"}), 1, "hexadecimal");
  ExpectOneLineError(Ca({"list", (tmp_ / "nowhere").string()}), 4, "no CA");
}

}  // namespace
}  // namespace sealdrop
