#include "tpm/testing/swtpm.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

extern char** environ;

namespace sealdrop::testing {
namespace fs = std::filesystem;

namespace {

Result<pid_t> Spawn(const std::vector<std::string>& argv, const fs::path& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Fail(ErrorCode::kUnavailable, "cannot start " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

Status Run(const std::vector<std::string>& argv, const fs::path& log) {
  SEALDROP_ASSIGN(pid_t pid, Spawn(argv, log));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Fail(ErrorCode::kUnavailable, argv[0] + " failed; see " + log.string());
  return Ok();
}

// Two consecutive free loopback ports (server and control), by asking the
// kernel for one and checking its neighbour; a race with another process is
// caught when swtpm fails to bind and Launch retries.
int FreePortPair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    ::close(s);
    if (port == 0 || port > 65000) continue;
    int t = ::socket(AF_INET, SOCK_STREAM, 0);
    a.sin_port = htons(static_cast<uint16_t>(port + 1));
    bool free = ::bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(t);
    if (free) return port;
  }
  return 0;
}

bool Accepts(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(s);
  return ok;
}

}  // namespace

Result<std::unique_ptr<Swtpm>> Swtpm::Start(const fs::path& dir, const fs::path& ek_maker_dir) {
  std::unique_ptr<Swtpm> t(new Swtpm);
  t->dir_ = dir;
  t->maker_dir_ = ek_maker_dir;
  std::error_code ec;
  fs::create_directories(dir / "state", ec);
  if (ec) return Fail(ErrorCode::kIo, "cannot create " + dir.string());
  if (!ek_maker_dir.empty()) {
    fs::create_directories(ek_maker_dir, ec);
    const fs::path m = fs::absolute(ek_maker_dir);
    std::ofstream(m / "swtpm-localca.conf") << "statedir = " << m.string() << "\n"
                                            << "signingkey = " << (m / "signkey.pem").string() << "\n"
                                            << "issuercert = " << (m / "issuercert.pem").string() << "\n"
                                            << "certserial = " << (m / "certserial").string() << "\n";
    std::ofstream(m / "swtpm-localca.options") << "--platform-manufacturer sealdrop-tests\n"
                                               << "--platform-version 2.1\n--platform-model swtpm\n";
    std::ofstream(m / "swtpm_setup.conf") << "create_certs_tool = /usr/bin/swtpm_localca\n"
                                          << "create_certs_tool_config = " << (m / "swtpm-localca.conf").string()
                                          << "\ncreate_certs_tool_options = "
                                          << (m / "swtpm-localca.options").string() << "\n"
                                          << "active_pcr_banks = sha256\n";
    SEALDROP_TRY(Run({"swtpm_setup", "--tpm2", "--tpmstate", (dir / "state").string(), "--create-ek-cert",
                      "--config", (m / "swtpm_setup.conf").string(), "--overwrite", "--display"},
                     dir / "swtpm_setup.log"));
  }
  SEALDROP_TRY(t->Launch());
  return t;
}

Status Swtpm::Launch() {
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (port_ == 0 || attempt > 0) port_ = FreePortPair();
    if (port_ == 0) return Fail(ErrorCode::kUnavailable, "no free loopback port for swtpm");
    SEALDROP_ASSIGN(pid_, Spawn({"swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + (dir_ / "state").string(),
                                 "--server", "type=tcp,port=" + std::to_string(port_) + ",bindaddr=127.0.0.1",
                                 "--ctrl", "type=tcp,port=" + std::to_string(port_ + 1) + ",bindaddr=127.0.0.1",
                                 "--flags", "not-need-init,startup-clear"},
                                dir_ / "swtpm.log"));
    for (int i = 0; i < 200; ++i) {
      if (Accepts(port_)) {
        tcti_ = "swtpm:host=127.0.0.1,port=" + std::to_string(port_);
        return Ok();
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) break;  // it could not bind: try other ports
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Stop();
  }
  return Fail(ErrorCode::kUnavailable, "swtpm did not start; see " + (dir_ / "swtpm.log").string());
}

void Swtpm::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

Status Swtpm::Restart() {
  Stop();
  return Launch();
}

fs::path Swtpm::maker_certificate() const { return maker_dir_ / "issuercert.pem"; }
fs::path Swtpm::maker_root() const { return maker_dir_ / "swtpm-localca-rootca-cert.pem"; }

Swtpm::~Swtpm() {
  Stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

}  // namespace sealdrop::testing
