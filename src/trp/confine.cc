#include "trp/confine.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "trp/loader_check.h"

namespace sealdrop {
namespace fs = std::filesystem;

namespace {
Status WriteProc(const char* path, const std::string& text) {
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd) return Fail(ErrorCode::kIo, std::string("cannot open ") + path + ": " + std::strerror(errno));
  bool ok = ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int err = errno;
  if (!ok) return Fail(ErrorCode::kIo, std::string("cannot write ") + path + ": " + std::strerror(err));
  return Ok();
}
}  // namespace

Result<ConfinedState> ConfineStateDirectory(const fs::path& state) {
  std::error_code ec;
  fs::path absolute = fs::canonical(state, ec);
  if (ec) return Fail(ErrorCode::kNotFound, "cannot find the state directory " + state.string());
  UniqueFd dir(::open(absolute.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return Fail(ErrorCode::kIo, "cannot open " + absolute.string() + ": " + std::strerror(errno));
  auto fail = [&](std::string what) -> Result<ConfinedState> {
    int err = errno;
    return Fail(ErrorCode::kRefused, what + " (" + std::strerror(err) +
                                         "); run the processor as root or allow unprivileged user namespaces");
  };
  if (::unshare(CLONE_NEWNS) != 0) {
    uid_t uid = ::geteuid();
    gid_t gid = ::getegid();
    // Inside the new user namespace root's files look like any other
    // user's; the loader check needs a view from outside (trp/loader_check.h).
    if (Status helper = StartRootControlHelper(); !helper) return fail(helper.error().message);
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return fail("cannot create a namespace to hide the state");
    if (!WriteProc("/proc/self/setgroups", "deny") ||
        !WriteProc("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1\n") ||
        !WriteProc("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1\n"))
      return fail("cannot map the processor's uid into its namespace");
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return fail("cannot make the processor's mounts private");
  if (::mount("sealdrop", absolute.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
              "size=4k,mode=0") != 0)
    return fail("cannot cover the state directory");
  fs::path path = fs::path("/proc/self/fd") / std::to_string(dir.get());
  return ConfinedState{std::move(path), std::move(dir)};
}

}  // namespace sealdrop
