#include "trp/loader_check.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <mutex>
#include <vector>

#include "base/unique_fd.h"

namespace sealdrop {
namespace {

constexpr uint32_t kMaxPath = 4096;
constexpr uint32_t kMaxAnswer = 16384;

std::mutex helper_mutex;
// Guarded by helper_mutex. No helper and not lost: check here. Lost: the
// helper stopped answering and every check fails.
UniqueFd helper_fd;
bool helper_lost = false;

std::vector<std::string> PathParts(const std::string& path) {
  std::vector<std::string> parts;
  size_t at = 0;
  while (at <= path.size()) {
    size_t end = path.find('/', at);
    if (end == std::string::npos) end = path.size();
    if (end > at) parts.push_back(path.substr(at, end - at));
    at = end + 1;
  }
  return parts;
}

// The uid that stands for root in this process's user namespace: 0 in the
// host's, the overflow uid inside a namespace that does not map root.
uid_t RootAsSeenHere() {
  // procfs files report no size: read them as streams.
  std::ifstream map("/proc/self/uid_map");
  uint64_t inside = 0, outside = 0, count = 0;
  while (map >> inside >> outside >> count)
    if (outside == 0 && count > 0) return static_cast<uid_t>(inside);
  std::ifstream overflow("/proc/sys/kernel/overflowuid");
  uint64_t id = 65534;
  overflow >> id;
  return static_cast<uid_t>(id);
}

std::string OwnerProblem(const std::string& path, const struct stat& st, uid_t root) {
  if (st.st_uid != root) return path + " is not owned by root";
  if (!S_ISLNK(st.st_mode) && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return path + " is writable by group or others";
  return {};
}

// The walk is done by hand, not with realpath, so that a link's own
// directory is checked as well as its target.
std::string Walk(const std::string& path, uid_t root) {
  if (path.empty() || path.front() != '/') return path + " is not an absolute path";
  std::vector<std::string> todo = PathParts(path);
  std::reverse(todo.begin(), todo.end());  // a stack: the next component last
  std::string current(1, '/');
  struct stat st {};
  if (::lstat("/", &st) != 0) return std::string("/ cannot be examined: ") + std::strerror(errno);
  if (std::string p = OwnerProblem("/", st, root); !p.empty()) return p;
  int links = 0;
  while (!todo.empty()) {
    std::string part = std::move(todo.back());
    todo.pop_back();
    if (part == ".") continue;
    if (part == "..") {
      current = current.substr(0, std::max<size_t>(1, current.rfind('/')));
      continue;
    }
    std::string next = current == "/" ? "/" + part : current + "/" + part;
    if (::lstat(next.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return {};
      return next + " cannot be examined: " + std::strerror(errno);
    }
    if (std::string p = OwnerProblem(next, st, root); !p.empty()) return p;
    if (!S_ISLNK(st.st_mode)) {
      current = std::move(next);
      continue;
    }
    if (++links > 40) return path + " goes through too many symbolic links";
    char target[kMaxPath];
    ssize_t n = ::readlink(next.c_str(), target, sizeof target);
    if (n <= 0 || n == static_cast<ssize_t>(sizeof target)) return next + " is a symbolic link that cannot be read";
    std::string link(target, static_cast<size_t>(n));
    if (link.front() == '/') current = std::string(1, '/');
    std::vector<std::string> more = PathParts(link);
    todo.insert(todo.end(), more.rbegin(), more.rend());
  }
  return {};
}

bool SendAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool ReceiveAll(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = ::recv(fd, p, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Each question is a u32 length (host order; both ends are this program)
// and a path; each answer a u32 length and the phrase.
[[noreturn]] void ServeQuestions(int fd) {
  const uid_t root = RootAsSeenHere();
  for (;;) {
    uint32_t size = 0;
    if (!ReceiveAll(fd, &size, sizeof size) || size > kMaxPath) _exit(0);
    std::string path(size, '\0');
    if (!ReceiveAll(fd, path.data(), size)) _exit(0);
    std::string answer = Walk(path, root).substr(0, kMaxAnswer);
    uint32_t answer_size = static_cast<uint32_t>(answer.size());
    if (!SendAll(fd, &answer_size, sizeof answer_size) || !SendAll(fd, answer.data(), answer.size())) _exit(0);
  }
}

}  // namespace

Status StartRootControlHelper() {
  int raw[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, raw) != 0)
    return Fail(ErrorCode::kIo, std::string("cannot create the ownership checker's socket: ") + std::strerror(errno));
  UniqueFd ours(raw[0]), theirs(raw[1]);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0)
    return Fail(ErrorCode::kIo, std::string("cannot start the ownership checker: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The programs the processor runs share its uid: they must not be able
    // to trace the helper and make it answer what they like.
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (::getppid() != parent) _exit(0);
    ::prctl(PR_SET_NAME, "sealdrop-owners", 0, 0, 0);
    // Nothing of the processor but this socket: no state directory, no
    // socket of the host.
    // (The child never returns, so no owner here closes anything.)
    const int keep = theirs.get();
    for (int fd = 3; fd < keep; ++fd) ::close(fd);
    ::close_range(static_cast<unsigned>(keep) + 1, ~0U, 0);
    ServeQuestions(keep);
  }
  theirs.reset();
  std::lock_guard lock(helper_mutex);
  helper_fd = std::move(ours);
  return Ok();
}

std::string RootControlProblem(const std::string& path) {
  std::lock_guard lock(helper_mutex);
  if (!helper_fd && !helper_lost) return Walk(path, RootAsSeenHere());
  if (path.size() > kMaxPath) return path.substr(0, 64) + "... is too long to check";
  // After a failed exchange the stream's framing is lost: the helper is not
  // asked again, and every check fails until the processor restarts.
  auto unavailable = [] {
    helper_fd.reset();
    helper_lost = true;
    return std::string("the processor's ownership checker does not answer (restart the processor)");
  };
  if (helper_lost) return unavailable();
  uint32_t size = static_cast<uint32_t>(path.size());
  if (!SendAll(helper_fd.get(), &size, sizeof size) || !SendAll(helper_fd.get(), path.data(), path.size())) return unavailable();
  uint32_t answer_size = 0;
  if (!ReceiveAll(helper_fd.get(), &answer_size, sizeof answer_size) || answer_size > kMaxAnswer) return unavailable();
  std::string answer(answer_size, '\0');
  if (!ReceiveAll(helper_fd.get(), answer.data(), answer_size)) return unavailable();
  return answer;
}

}  // namespace sealdrop
