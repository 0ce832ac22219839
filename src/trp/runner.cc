#include "trp/runner.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sched.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <thread>
#include <cstring>
#include <string_view>

#include "base/unique_fd.h"
#include "crypto/jws.h"
#include "package/opener.h"
#include "package/elf.h"
#include "package/package_file.h"
#include "package/protected_elf.h"
#include "trp/licences.h"
#include "trp/loader_check.h"

namespace sealdrop {
namespace {

Status WriteAll(int fd, ByteView data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fail(ErrorCode::kIo, std::string("cannot write the program image: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Ok();
}

enum class ChildStep : int { kStdio = 1, kCwd, kCapabilities, kExec };

std::string ChildStepMessage(ChildStep step) {
  switch (step) {
    case ChildStep::kStdio: return "the processor cannot pass the standard streams to the program";
    case ChildStep::kCwd: return "the program cannot start in the caller's working directory";
    case ChildStep::kCapabilities: return "the processor cannot drop the program's capabilities";
    case ChildStep::kExec: return "the program image cannot be executed";
  }
  return "the program could not start";
}

// Waits for the program, and ends it if the host goes away first (the user
// pressed Ctrl-C on 'sealdrop run', or the client died): SIGTERM, then
// SIGKILL after a grace period. Watches a pidfd and the host's connection
// together, so the exit is seen at once.
void WaitForProgram(pid_t pid, int host_fd, int* status) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  bool terminated = false;
  auto deadline = std::chrono::steady_clock::time_point::max();
  for (;;) {
    pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    pollfd fds[2] = {{pidfd.get(), POLLIN, 0}, {host_fd, POLLRDHUP, 0}};
    int timeout_ms = !pidfd || terminated ? 100 : -1;
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) break;
    bool host_gone = host_fd >= 0 && (fds[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
    if (host_gone && !terminated) {
      ::kill(pid, SIGTERM);
      terminated = true;
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    }
    if (terminated && std::chrono::steady_clock::now() > deadline) ::kill(pid, SIGKILL);
  }
}

// The decrypted program must not need a writable and executable page, and
// its loader must reach only what root controls: a library found in a
// directory the host can write would run its constructors inside the
// decrypted process. The server checked the file when the program was added;
// the processor checks again on the authenticated image (read-only through a
// mapping of the sealed memfd, which cannot shrink under it), and checks the
// directories themselves on this machine, which only it can.
Status CheckImage(int fd, uint64_t size, const std::string& name) {
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return Fail(ErrorCode::kIo, std::string("cannot map the program image: ") + std::strerror(errno));
  auto image = ParseElf(ByteView(static_cast<const uint8_t*>(map), size));
  Status st = image ? CheckNoWritableCode(*image) : Status(std::unexpected(image.error()));
  if (st) st = CheckLibrarySearchPaths(*image);
  ::munmap(map, size);
  if (!st) return Fail(ErrorCode::kRefused, "the processor will not run " + name + ": " + st.error().message);
  std::vector<LoaderPath> paths = LoaderPaths(*image);
  // What glibc's loader reads for every dynamic program: a preload list
  // whose libraries it maps first, and the cache that says where each
  // library is. Normally root's; checked, not assumed.
  if (image->is_dynamic || !image->interpreter.empty())
    for (const char* file : {"/etc/ld.so.preload", "/etc/ld.so.cache"})
      paths.push_back({file, "loader's " + std::string(file)});
  for (const LoaderPath& p : paths)
    if (std::string problem = RootControlProblem(p.path); !problem.empty())
      return Fail(ErrorCode::kRefused, "the processor will not run " + name + ": its " + p.what +
                                           " is not under root's sole control on this machine (" + problem +
                                           "), so another user could put a library there that reads the program's "
                                           "memory; have root make it owned by root and writable only by root "
                                           "(chown root; chmod go-w)");
  return Ok();
}

// glibc opens a locale or a time zone file by absolute path when LANG,
// LC_ALL or TZ names one, and parses it inside the program: such a value
// would let the host feed the decrypted process files it wrote itself. Names
// of the system's locales and zones carry no such path.
bool HostFileInValue(const std::string& name, const std::string& value) {
  if (name == "TZ") {
    std::string_view v = value;
    if (v.starts_with(':')) v.remove_prefix(1);
    return v.starts_with('/') || v.find("..") != std::string_view::npos;
  }
  return value.find('/') != std::string::npos;
}

std::unexpected<Error> Damaged(const Manifest& m) {
  return std::unexpected(Error{ErrorCode::kCryptoFailure, "the stored package of " + m.name +
                                                              " is damaged or was altered; run 'sealdrop get " +
                                                              m.name + "' to download it again at no charge"});
}

// A stored package this processor holds a licence for: layout, verified
// manifest and content key. Every check that does not need the payload.
struct Licensed {
  PackageLayout layout;
  Manifest manifest;
  SecretBytes kx;
};

Result<Licensed> OpenLicensed(const ProcessorState& state, int fd) {
  SEALDROP_ASSIGN(PackageLayout layout, ReadPackageLayout(fd));
  // The package id is read before the signature is checked only to find the
  // licence; the licence's key then decides whether the manifest is genuine.
  auto unverified = JwsParse(layout.manifest_jws);
  auto claimed = unverified ? ParseManifest(unverified->payload) : std::unexpected(unverified.error());
  if (!claimed)
    return Fail(ErrorCode::kMalformed, "the package's manifest is damaged or was altered (" +
                                           claimed.error().message + "); download the program again with 'sealdrop get'");
  SEALDROP_ASSIGN(LicenceRecord licence, FindLicence(state.dir(), claimed->package_id));
  SEALDROP_ASSIGN(EcPublicKey server_key, EcPublicKey::FromPem(licence.server_key_pem));
  const TrpIdentity& id = state.identity();
  auto verified = VerifyManifest(layout.manifest_jws, server_key, Recipient{id.device_serial, id.key_wrap_key_id});
  if (!verified && verified.error().code == ErrorCode::kCryptoFailure)
    return Fail(ErrorCode::kCryptoFailure, "the manifest of the stored package of " + claimed->name +
                                               " does not carry its server's signature: it was altered; run 'sealdrop get " +
                                               claimed->name + "' to download it again at no charge");
  if (!verified) return std::unexpected(verified.error());
  Manifest m = std::move(*verified);
  if (m.program_id != licence.program_id)
    return Fail(ErrorCode::kRefused, "the package does not match its licence");
  if (layout.elf_first != (m.kind == "elf") || layout.payload_size != m.payload_size) return Damaged(m);
  SEALDROP_ASSIGN(SecretBytes kx, UnwrapContentKey(m, state.keywrap_key()));
  return Licensed{std::move(layout), std::move(m), std::move(kx)};
}

}  // namespace

Result<RunOutcome> RunPackage(const ProcessorState& state, const RunRequest& req) {
  if (!state.confined())
    return Fail(ErrorCode::kRefused, "this processor runs no programs: it could not hide its state from them "
                                     "(see its log; run it as root or allow unprivileged user namespaces)");
  SEALDROP_ASSIGN(Licensed program, OpenLicensed(state, req.package_fd));
  const Manifest& m = program.manifest;
  const SecretBytes& kx = program.kx;
  if (m.kind != "elf")
    return Fail(ErrorCode::kInvalidArgument, m.name + " is a data package, not a program; open it with 'sealdrop open " +
                                                 m.name + " --with PROGRAM'");
  std::optional<Licensed> input;
  if (req.input_package_fd >= 0) {
    SEALDROP_ASSIGN(input, OpenLicensed(state, req.input_package_fd));
    if (input->manifest.kind != "data")
      return Fail(ErrorCode::kInvalidArgument, input->manifest.name + " is a program, not data to open");
  }

  UniqueFd image(::memfd_create("sealdrop-program", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!image) return Fail(ErrorCode::kIo, std::string("cannot create a sealed memory file: ") + std::strerror(errno));
  auto decrypted = DecryptProtectedElf(req.package_fd, m, kx, [&](ByteView chunk) { return WriteAll(image.get(), chunk); });
  if (!decrypted) {
    if (decrypted.error().code == ErrorCode::kIo) return std::unexpected(decrypted.error());
    return Damaged(m);
  }
  if (::fcntl(image.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
    return Fail(ErrorCode::kIo, std::string("cannot seal the program image: ") + std::strerror(errno));
  SEALDROP_TRY(CheckImage(image.get(), m.payload_size, m.name));
  // exec() resets PR_SET_DUMPABLE unless the image is unreadable to the new
  // process: an execute-only ELF image, exec'd without capabilities (see the
  // child below), keeps the program non-dumpable: no same-uid ptrace, no
  // /proc/PID/mem or exe reads.
  if (::fchmod(image.get(), 0100) != 0)
    return Fail(ErrorCode::kIo, std::string("cannot protect the program image: ") + std::strerror(errno));

  // Everything the child needs is prepared before fork: after fork only
  // async-signal-safe calls are made.
  std::vector<std::string> argv_store = {m.name};
  argv_store.insert(argv_store.end(), req.args.begin(), req.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_store = {kProgramPath};
  for (const auto& e : req.env) {
    auto eq = e.find('=');
    if (eq == std::string::npos || e.size() > 4096) continue;
    std::string name = e.substr(0, eq);
    if (HostFileInValue(name, e.substr(eq + 1))) continue;
    for (const auto& allowed : kPassedEnvironment)
      if (name == allowed) env_store.push_back(e);
  }
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* cwd = req.cwd.empty() ? nullptr : req.cwd.c_str();
  // Failures between fork and exec travel back through this pipe (closed on
  // a successful exec), so they are not confused with the program's own
  // exit codes.
  UniquePipe report;
  if (!MakePipe(O_CLOEXEC, &report)) return Fail(ErrorCode::kIo, "cannot create a pipe");
  // 'sealdrop open --with': the data's plaintext reaches the program's stdin
  // through a pipe only the processor and the program hold.
  UniquePipe feed;
  if (input && !MakePipe(O_CLOEXEC, &feed)) return Fail(ErrorCode::kIo, "cannot create a pipe");
  const int stdin_fd = input ? feed.read.get() : req.stdio[0];

  pid_t pid = ::fork();
  if (pid < 0) return Fail(ErrorCode::kIo, std::string("cannot fork: ") + std::strerror(errno));
  if (pid == 0) {
    // The child ends in exec or _exit, so its copies of the owners never
    // run their destructors; only async-signal-safe calls from here on.
    const int report_write = report.write.get();
    ::close(report.read.get());
    auto die = [&](ChildStep step) {
      int err[2] = {static_cast<int>(step), errno};
      (void)!::write(report_write, err, sizeof err);
      _exit(127);
    };
    if (stdin_fd >= 0 && ::dup2(stdin_fd, 0) < 0) die(ChildStep::kStdio);
    for (int i = 1; i < 3; ++i)
      if (req.stdio[i] >= 0 && ::dup2(req.stdio[i], i) < 0) die(ChildStep::kStdio);
    if (cwd != nullptr && ::chdir(cwd) != 0) die(ChildStep::kCwd);
    // The processor ignores SIGPIPE; the program must not inherit that.
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    // No capabilities cross exec: inside the processor's user namespace the
    // child holds all of them, and a program that kept any could read its
    // own execute-only image (so exec would leave it dumpable) or undo the
    // mount that hides the state. A root processor's programs must not
    // regain them through exec either.
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    ::prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                   SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED,
            0, 0, 0);
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct none_caps[2] = {};
    if (::syscall(SYS_capset, &header, none_caps) != 0) die(ChildStep::kCapabilities);
    // Nothing the processor holds open crosses exec: its TPM connection
    // (the tpm2 provider's, whose loaded keys a program could otherwise
    // drive), the host's socket, the state directory.
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      const long max_fd = ::sysconf(_SC_OPEN_MAX);
      for (int fd = 3; fd < (max_fd > 0 ? max_fd : 65536); ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    ::fexecve(image.get(), argv.data(), envp.data());
    die(ChildStep::kExec);
  }
  report.write.reset();
  int err[2] = {0, 0};
  ssize_t got;
  do got = ::read(report.read.get(), err, sizeof err);
  while (got < 0 && errno == EINTR);
  report.read.reset();
  int status = 0;
  if (got == static_cast<ssize_t>(sizeof err)) {
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return Fail(static_cast<ChildStep>(err[0]) == ChildStep::kCwd ? ErrorCode::kInvalidArgument : ErrorCode::kRefused,
                ChildStepMessage(static_cast<ChildStep>(err[0])) + ": " + std::strerror(err[1]));
  }
  std::optional<Error> feed_error;
  std::thread feeder;
  if (input) {
    feed.read.reset();
    feeder = std::thread([&] {
      bool reader_gone = false;
      auto fed = DecryptPayload(req.input_package_fd, input->layout.payload_offset, input->manifest, input->kx,
                                [&](ByteView chunk) -> Status {
                                  size_t done = 0;
                                  while (done < chunk.size()) {
                                    ssize_t n = ::write(feed.write.get(), chunk.data() + done, chunk.size() - done);
                                    if (n < 0 && errno == EINTR) continue;
                                    if (n < 0 && errno == EPIPE) reader_gone = true;
                                    if (n <= 0) return Fail(ErrorCode::kIo, "the program's input closed");
                                    done += static_cast<size_t>(n);
                                  }
                                  return Ok();
                                });
      feed.write.reset();
      if (!fed && !reader_gone) {
        // The program has seen only authenticated chunks, but not all of
        // them: it must not finish as if it had read the whole data.
        ::kill(pid, SIGKILL);
        feed_error = fed.error().code == ErrorCode::kIo ? fed.error() : Damaged(input->manifest).error();
      }
    });
  }
  WaitForProgram(pid, req.host_fd, &status);
  if (feeder.joinable()) feeder.join();
  if (feed_error) return std::unexpected(*feed_error);
  RunOutcome out;
  if (WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) out.signal = WTERMSIG(status);
  return out;
}

}  // namespace sealdrop

namespace sealdrop {

Status ExportData(const ProcessorState& state, int package_fd, int out_fd) {
  SEALDROP_ASSIGN(Licensed data, OpenLicensed(state, package_fd));
  const Manifest& m = data.manifest;
  if (m.kind != "data")
    return Fail(ErrorCode::kInvalidArgument, m.name + " is a program; run it with 'sealdrop run " + m.name + "'");
  if (!m.rights.export_plaintext)
    return Fail(ErrorCode::kRefused, "the licence for " + m.name +
                                         " does not allow exporting its content; open it with a program: "
                                         "'sealdrop open " + m.name + " --with PROGRAM'");
  auto st = DecryptPayload(package_fd, data.layout.payload_offset, m, data.kx,
                           [&](ByteView chunk) { return WriteAll(out_fd, chunk); });
  if (!st && st.error().code != ErrorCode::kIo) return Damaged(m);
  return st;
}

}  // namespace sealdrop
