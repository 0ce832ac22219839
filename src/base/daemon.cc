#include "base/daemon.h"

#include <sys/resource.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/unique_fd.h"

namespace sealdrop {
namespace {
std::atomic<unsigned> g_reloads{0};
void OnHangup(int) { g_reloads.fetch_add(1); }
}  // namespace

Status NotifySupervisor(std::string_view state) {
  const char* name = std::getenv("NOTIFY_SOCKET");
  if (name == nullptr || *name == '\0') return Ok();
  std::string path = name;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path || (path[0] != '/' && path[0] != '@'))
    return Fail(ErrorCode::kInvalidArgument, "NOTIFY_SOCKET must be an absolute path or start with @");
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Fail(ErrorCode::kUnavailable, "cannot create a socket to notify the service manager");
  ssize_t n = ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
  if (n != static_cast<ssize_t>(state.size()))
    return Fail(ErrorCode::kUnavailable, "cannot notify the service manager at " + path);
  return Ok();
}

Status NotifyReloading() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t usec = static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  return NotifySupervisor("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

const std::atomic<unsigned>& ReloadRequests() {
  static const bool installed = [] {
    struct sigaction sa {};
    sa.sa_handler = OnHangup;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, nullptr);
    return true;
  }();
  (void)installed;
  return g_reloads;
}

uint64_t RaiseDescriptorLimit() {
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    struct rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<uint64_t>(limit.rlim_cur);
}

}  // namespace sealdrop
