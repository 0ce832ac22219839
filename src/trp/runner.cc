#include "trp/runner.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crypto/jws.h"
#include "package/opener.h"
#include "package/package_file.h"
#include "trp/licences.h"

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

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<RunOutcome> RunPackage(const ProcessorState& state, const RunRequest& req) {
  SEALDROP_ASSIGN(PackagePrefix prefix, ReadPackagePrefix(req.package_fd));
  // The package id is read before the signature is checked only to find the
  // licence; the licence's key then decides whether the manifest is genuine.
  SEALDROP_ASSIGN(Jws unverified, JwsParse(prefix.manifest_jws));
  SEALDROP_ASSIGN(Manifest claimed, ParseManifest(unverified.payload));
  SEALDROP_ASSIGN(LicenceRecord licence, FindLicence(state.dir(), claimed.package_id));
  SEALDROP_ASSIGN(EcPublicKey server_key, EcPublicKey::FromPem(licence.server_key_pem));
  const TrpIdentity& id = state.identity();
  SEALDROP_ASSIGN(Manifest m, VerifyManifest(prefix.manifest_jws, server_key,
                                             Recipient{id.device_serial, id.key_wrap_key_id}));
  if (m.program_id != licence.program_id)
    return Fail(ErrorCode::kRefused, "the package does not match its licence");
  SEALDROP_ASSIGN(SecretBytes kx, UnwrapContentKey(m, state.keywrap_key()));

  Fd image{::memfd_create("sealdrop-program", MFD_CLOEXEC | MFD_ALLOW_SEALING)};
  if (image.fd < 0) return Fail(ErrorCode::kIo, std::string("cannot create a sealed memory file: ") + std::strerror(errno));
  bool script = false;
  bool first = true;
  auto decrypted = DecryptPayload(req.package_fd, prefix.payload_offset, m, kx, [&](ByteView chunk) {
    if (first && chunk.size() >= 2) script = chunk[0] == '#' && chunk[1] == '!';
    first = false;
    return WriteAll(image.fd, chunk);
  });
  if (!decrypted) {
    if (decrypted.error().code == ErrorCode::kIo) return std::unexpected(decrypted.error());
    return Fail(ErrorCode::kCryptoFailure, "the stored package of " + m.name +
                                               " is damaged or was altered; run 'sealdrop get " + m.name +
                                               "' to download it again at no charge");
  }
  if (::fcntl(image.fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
    return Fail(ErrorCode::kIo, std::string("cannot seal the program image: ") + std::strerror(errno));
  // exec() resets PR_SET_DUMPABLE unless the image is unreadable to the new
  // process: an execute-only ELF image keeps the program non-dumpable (no
  // same-uid ptrace, no /proc/PID/mem or exe reads) for a processor that
  // runs without CAP_DAC_OVERRIDE, as deployed under its own uid. A script
  // must stay readable for its interpreter.
  ::fchmod(image.fd, script ? 0500 : 0100);

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
    for (const auto& allowed : kPassedEnvironment)
      if (name == allowed) env_store.push_back(e);
  }
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* cwd = req.cwd.empty() ? nullptr : req.cwd.c_str();

  pid_t pid = ::fork();
  if (pid < 0) return Fail(ErrorCode::kIo, std::string("cannot fork: ") + std::strerror(errno));
  if (pid == 0) {
    for (int i = 0; i < 3; ++i)
      if (req.stdio[i] >= 0 && ::dup2(req.stdio[i], i) < 0) _exit(126);
    if (cwd != nullptr && ::chdir(cwd) != 0) _exit(126);
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    // A script's interpreter opens the image through /dev/fd, so its
    // descriptor must survive exec; an ELF image is mapped by the kernel.
    if (script) {
      int flags = ::fcntl(image.fd, F_GETFD);
      ::fcntl(image.fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    ::fexecve(image.fd, argv.data(), envp.data());
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Fail(ErrorCode::kIo, "lost the program's process");
  }
  RunOutcome out;
  if (WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) out.signal = WTERMSIG(status);
  return out;
}

}  // namespace sealdrop
