// Shared fixtures for the pki tests: temporary directories, keys, CSRs, CAs
// and a way to run external commands (openssl, sealdrop-ca).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "crypto/ec.h"
#include "pki/ca.h"
#include "pki/cert.h"

// The openssl command-line tool, for interop checks; tests skip without it.
#define SEALDROP_REQUIRE_OPENSSL()                                      \
  do {                                                                  \
    if (std::string_view(OPENSSL_BIN).empty())                          \
      GTEST_SKIP() << "the openssl command-line tool is not installed"; \
  } while (0)

namespace sealdrop::pki_test {

namespace fs = std::filesystem;

// A fresh directory, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

EcPrivateKey NewKey();
std::string DeviceCsr(const EcPrivateKey& key, const std::string& device_serial,
                      DeviceKeyRole role = DeviceKeyRole::kIdentity,
                      const std::string& common_name = "test device");
std::string ServerCsr(const EcPrivateKey& key, const std::vector<std::string>& hosts,
                      const std::string& common_name = "sealdropd test");

std::string ReadAll(const fs::path& path);
void WriteAll(const fs::path& path, std::string_view data);

// Creates a CA at `dir`; aborts the test on failure.
void MakeCa(const fs::path& dir, const std::string& name, int days = 3650);
Certificate CaCert(const fs::path& ca_dir);
EcPrivateKey CaKey(const fs::path& ca_dir);
// Issues from a new key and returns the certificate.
Certificate IssueDevice(const fs::path& ca_dir, const std::string& device_serial,
                        DeviceKeyRole role = DeviceKeyRole::kIdentity, int days = 365,
                        int offset_days = 0);
Certificate IssueServer(const fs::path& ca_dir, const std::vector<std::string>& hosts);
// A store trusting the CA in ca_dir, with its CRL when with_crl.
TrustStore StoreFor(const fs::path& ca_dir, bool with_crl = true);

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs argv (no shell interpretation of the arguments) with stdout and
// stderr captured.
CommandResult RunCommand(const std::vector<std::string>& argv);

}  // namespace sealdrop::pki_test
