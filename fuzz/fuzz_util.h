// Helpers shared by the fuzz targets: invariant checks that abort (so
// libFuzzer keeps the input), anonymous in-memory files, fixed keys and a
// fixed clock, so every run of an input takes the same path.
//
// Nothing here is used outside fuzz/.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/ec.h"

namespace sealdrop::fuzz {

[[noreturn]] inline void CheckFailed(const char* file, int line, const char* cond, const std::string& detail) {
  std::fprintf(stderr, "\n*** FUZZ_CHECK failed at %s:%d: %s\n*** %s\n", file, line, cond, detail.c_str());
  std::abort();
}

// An invariant the code under test promises; a violation is a bug, not a
// rejected input, so it aborts and libFuzzer saves the input.
#define FUZZ_CHECK(cond, detail)                                                     \
  do {                                                                               \
    if (!(cond)) ::sealdrop::fuzz::CheckFailed(__FILE__, __LINE__, #cond, (detail)); \
  } while (0)

// An anonymous regular file holding `bytes`, for the fd-based readers
// (ReadPackageLayout, DecryptPayload, DecryptProtectedElf). memfd_create is
// a system call and a copy, with no file system involved.
class MemFd {
 public:
  explicit MemFd(ByteView bytes) : fd_(::memfd_create("sealdrop-fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) CheckFailed(__FILE__, __LINE__, "memfd_create", "cannot create a memfd");
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n <= 0) CheckFailed(__FILE__, __LINE__, "write", "cannot fill the memfd");
      done += static_cast<size_t>(n);
    }
  }
  MemFd(const MemFd&) = delete;
  MemFd& operator=(const MemFd&) = delete;
  ~MemFd() { ::close(fd_); }
  int fd() const { return fd_; }

 private:
  int fd_;
};

// A P-256 key from a fixed scalar: the same in every run and in
// make_corpus, so seed JWS made there verify here.
inline EcPrivateKey FixedKey(uint8_t seed) {
  Bytes scalar(32, seed);
  scalar[0] = 0x01;  // well below the group order
  auto key = EcPrivateKey::FromScalar(SecretBytes(scalar, SecretAccess{}));
  if (!key) CheckFailed(__FILE__, __LINE__, "FromScalar", key.error().message);
  return *key;
}

inline SecretBytes FixedSecret(size_t size, uint8_t seed) {
  Bytes b(size);
  for (size_t i = 0; i < size; ++i) b[i] = static_cast<uint8_t>(seed + 31 * i);
  return SecretBytes(b, SecretAccess{});
}

// The clock of the in-memory worlds: fixed at the first call, which comes
// right after their certificates were issued, so it lies inside every
// validity window and never moves during a run.
inline std::chrono::system_clock::time_point FixedNow() {
  static const auto now = std::chrono::system_clock::now();
  return now;
}

inline std::string Str(ByteView b) { return std::string(AsString(b)); }

// A fresh directory on /dev/shm for files a harness rewrites on every input
// (SQLite ledgers, processor state): no disk, so fsync costs nothing.
// Directories of fuzzer processes that died without cleaning up (a crash
// skips atexit) are removed first. Falls back to the temp directory.
inline std::filesystem::path ScratchDir(const std::string& name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
  const std::string prefix = "sealdrop-fuzz-" + name + "-";
  for (const auto& e : fs::directory_iterator(base, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) != 0) continue;
    const long pid = std::atol(n.c_str() + prefix.size());
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
  }
  const fs::path dir = base / (prefix + std::to_string(::getpid()));
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  return dir;
}

// SEALDROP_FUZZ_TRACE=1 makes the state-machine harnesses print each step,
// to see how deep an input (a seed, a crash) gets: run the fuzzer on it.
inline bool Tracing() {
  static const bool on = std::getenv("SEALDROP_FUZZ_TRACE") != nullptr;
  return on;
}
#define FUZZ_TRACE(...)                                              \
  do {                                                               \
    if (::sealdrop::fuzz::Tracing()) std::fprintf(stderr, __VA_ARGS__); \
  } while (0)

}  // namespace sealdrop::fuzz
