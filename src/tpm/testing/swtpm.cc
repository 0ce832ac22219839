#include "tpm/testing/swtpm.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "base/files.h"

extern char** environ;

namespace sealdrop::testing {
namespace fs = std::filesystem;

namespace {

// scripts/swtpm, which the demo and the shell tests use too: the one place
// that knows how to make a TPM with a maker's EK certificate and start it.
Status RunScript(std::vector<std::string> args, const fs::path& log) {
  args.insert(args.begin(), {"bash", SEALDROP_SWTPM_SCRIPT});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, "bash", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Fail(ErrorCode::kUnavailable, std::string("cannot run scripts/swtpm: ") + std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Fail(ErrorCode::kUnavailable, "scripts/swtpm " + args[2] + " failed; see " + log.string());
  return Ok();
}

}  // namespace

Result<std::unique_ptr<Swtpm>> Swtpm::Start(const fs::path& dir, const fs::path& ek_maker_dir) {
  std::unique_ptr<Swtpm> t(new Swtpm);
  t->dir_ = fs::absolute(dir);
  t->maker_dir_ = ek_maker_dir.empty() ? fs::path() : fs::absolute(ek_maker_dir);
  std::error_code ec;
  fs::create_directories(t->dir_, ec);
  if (ec) return Fail(ErrorCode::kIo, "cannot create " + dir.string());
  std::vector<std::string> args = {"start", t->dir_.string()};
  if (!t->maker_dir_.empty()) args.insert(args.end(), {"--maker", t->maker_dir_.string()});
  SEALDROP_TRY(RunScript(args, t->dir_ / "script.log"));
  t->running_ = true;
  SEALDROP_ASSIGN(std::string port, ReadTextFile(t->dir_ / "swtpm.port", 16));
  while (!port.empty() && port.back() == '\n') port.pop_back();
  t->tcti_ = "swtpm:host=127.0.0.1,port=" + port;
  return t;
}

void Swtpm::Stop() {
  if (!running_) return;
  (void)RunScript({"stop", dir_.string()}, dir_ / "script.log");
  running_ = false;
}

Status Swtpm::Restart() {
  SEALDROP_TRY(RunScript({"restart", dir_.string()}, dir_ / "script.log"));
  running_ = true;
  return Ok();
}

fs::path Swtpm::maker_certificate() const { return maker_dir_ / "issuercert.pem"; }
fs::path Swtpm::maker_root() const { return maker_dir_ / "swtpm-localca-rootca-cert.pem"; }

Swtpm::~Swtpm() {
  Stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

}  // namespace sealdrop::testing
