#include "pki/pki_test_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "base/files.h"

extern char** environ;

namespace sealdrop::pki_test {

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "sealdrop-pki-XXXXXX").string();
  char* made = ::mkdtemp(pattern.data());
  if (made == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(path_, ec);
}

EcPrivateKey NewKey() {
  auto key = EcPrivateKey::Generate();
  if (!key) throw std::runtime_error("EcPrivateKey::Generate failed: " + key.error().message);
  return std::move(*key);
}

std::string DeviceCsr(const EcPrivateKey& key, const std::string& device_serial, DeviceKeyRole role,
                      const std::string& common_name) {
  CsrRequest request;
  request.common_name = common_name;
  request.serial_number = device_serial;
  request.role = role;
  auto csr = MakeCsrPem(key, request);
  if (!csr) throw std::runtime_error("MakeCsrPem failed: " + csr.error().message);
  return *csr;
}

std::string ServerCsr(const EcPrivateKey& key, const std::vector<std::string>& hosts,
                      const std::string& common_name) {
  CsrRequest request;
  request.common_name = common_name;
  request.hosts = hosts;
  auto csr = MakeCsrPem(key, request);
  if (!csr) throw std::runtime_error("MakeCsrPem failed: " + csr.error().message);
  return *csr;
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteAll(const fs::path& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

void MakeCa(const fs::path& dir, const std::string& name, int days) {
  auto st = CaInit(dir, {.name = name, .days = days});
  if (!st) throw std::runtime_error("CaInit failed: " + st.error().message);
}

Certificate CaCert(const fs::path& ca_dir) {
  auto cert = Certificate::FromPem(ReadAll(ca_dir / "ca.pem"));
  if (!cert) throw std::runtime_error("ca.pem: " + cert.error().message);
  return *cert;
}

EcPrivateKey CaKey(const fs::path& ca_dir) {
  std::string pem = ReadAll(ca_dir / "ca.key");
  auto key = EcPrivateKey::FromPkcs8Pem(SecretBytes(AsBytes(pem), SecretAccess{}));
  if (!key) throw std::runtime_error("ca.key: " + key.error().message);
  return *key;
}

Certificate IssueDevice(const fs::path& ca_dir, const std::string& device_serial,
                        DeviceKeyRole role, int days, int offset_days) {
  CaIssueOptions options;
  options.profile = CertProfile::kDevice;
  options.days = days;
  options.not_before_offset_days = offset_days;
  auto pem = CaIssue(ca_dir, DeviceCsr(NewKey(), device_serial, role), options);
  if (!pem) throw std::runtime_error("CaIssue failed: " + pem.error().message);
  auto cert = Certificate::FromPem(*pem);
  if (!cert) throw std::runtime_error("issued PEM: " + cert.error().message);
  return *cert;
}

Certificate IssueServer(const fs::path& ca_dir, const std::vector<std::string>& hosts) {
  CaIssueOptions options;
  options.profile = CertProfile::kServer;
  auto pem = CaIssue(ca_dir, ServerCsr(NewKey(), hosts), options);
  if (!pem) throw std::runtime_error("CaIssue failed: " + pem.error().message);
  auto cert = Certificate::FromPem(*pem);
  if (!cert) throw std::runtime_error("issued PEM: " + cert.error().message);
  return *cert;
}

TrustStore StoreFor(const fs::path& ca_dir, bool with_crl) {
  TrustStore store;
  auto st = store.AddRootsPem(ReadAll(ca_dir / "ca.pem"));
  if (!st) throw std::runtime_error("AddRootsPem: " + st.error().message);
  if (with_crl) {
    st = store.AddCrlPem(ReadAll(ca_dir / "crl.pem"));
    if (!st) throw std::runtime_error("AddCrlPem: " + st.error().message);
  }
  return store;
}

CommandResult RunCommand(const std::vector<std::string>& argv) {
  TempDir capture;
  fs::path out_file = capture / "stdout";
  fs::path err_file = capture / "stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  CommandResult result;
  if (rc != 0) return result;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadAll(out_file);
  result.err = ReadAll(err_file);
  return result;
}

}  // namespace sealdrop::pki_test
