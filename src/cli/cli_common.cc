#include "cli/cli_common.h"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

namespace sealdrop::cli {
namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }
}  // namespace

void EnsureStandardDescriptors() {
  for (int fd = 0; fd < 3; ++fd)
    if (::fcntl(fd, F_GETFD) < 0) {
      int n = ::open("/dev/null", O_RDWR);
      if (n >= 0 && n != fd) {
        ::dup2(n, fd);
        ::close(n);
      }
    }
}

std::string_view Version() { return SEALDROP_VERSION; }

int ExitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kAuthFailed: return kExitAuth;
    case ErrorCode::kNotFound: return kExitNotFound;
    case ErrorCode::kInsufficientFunds: return kExitFunds;
    case ErrorCode::kRefused:
    case ErrorCode::kUntrustedPeer:
    case ErrorCode::kCryptoFailure: return kExitRefused;
    case ErrorCode::kUnavailable: return kExitUnavailable;
    case ErrorCode::kAlreadyOwned: return kExitAlreadyOwned;
    default: return kExitFailure;
  }
}

int Report(std::string_view program, const Error& error) {
  std::string msg = error.message;
  if (!msg.empty() && msg.back() != '.') msg += '.';
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(program.size()), program.data(), msg.c_str());
  return ExitCodeFor(error.code);
}

const std::atomic<bool>& StopFlag() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return g_stop;
}

Result<std::string> ReadSecret(std::string_view env_name, std::string_view what) {
  if (const char* v = std::getenv(std::string(env_name).c_str()); v != nullptr && *v != '\0')
    return std::string(v);
  std::string line;
  if (!std::getline(std::cin, line) || line.empty())
    return Fail(ErrorCode::kInvalidArgument,
                "give the " + std::string(what) + " on standard input or in " + std::string(env_name));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace sealdrop::cli
