#include "base/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "base/unique_fd.h"

namespace sealdrop {
namespace fs = std::filesystem;

namespace {
Error IoError(const fs::path& path, std::string_view what) {
  return Error{ErrorCode::kIo, std::string(what) + " " + path.string() + ": " + std::strerror(errno)};
}
}  // namespace

fs::path TempPathFor(const fs::path& target) {
  static std::atomic<uint64_t> counter{0};
  return target.parent_path() /
         ("." + target.filename().string() + ".tmp." + std::to_string(getpid()) + "." +
          std::to_string(counter.fetch_add(1)));
}

Result<Bytes> ReadFile(const fs::path& path, size_t max_size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::unexpected(IoError(path, "cannot open"));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return std::unexpected(IoError(path, "cannot stat"));
  if (static_cast<uint64_t>(st.st_size) > max_size)
    return Fail(ErrorCode::kTooLarge, path.string() + " is larger than " +
                                          std::to_string(max_size) + " bytes");
  Bytes out(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::unexpected(IoError(path, "cannot read"));
    done += static_cast<size_t>(n);
  }
  return out;
}

Result<std::string> ReadTextFile(const fs::path& path, size_t max_size) {
  SEALDROP_ASSIGN(Bytes b, ReadFile(path, max_size));
  return ToString(b);
}

Status SyncDirectory(const fs::path& path) {
  fs::path dir = path.empty() ? fs::path(".") : path;
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return std::unexpected(IoError(dir, "cannot open directory"));
  if (::fsync(fd.get()) != 0) return std::unexpected(IoError(dir, "cannot sync directory"));
  return Ok();
}

Status CommitRename(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return std::unexpected(IoError(to, "cannot rename into"));
  return SyncDirectory(to.parent_path());
}

Status WriteFileAtomic(const fs::path& path, ByteView data, int mode) {
  fs::path tmp = TempPathFor(path);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) return std::unexpected(IoError(tmp, "cannot create"));
  ::fchmod(fd.get(), mode);  // umask must not widen or narrow what was asked for
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Error e = IoError(tmp, "cannot write");
      fd.reset();
      ::unlink(tmp.c_str());
      return std::unexpected(e);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    Error e = IoError(tmp, "cannot sync");
    fd.reset();
    ::unlink(tmp.c_str());
    return std::unexpected(e);
  }
  fd.reset();
  auto st = CommitRename(tmp, path);
  if (!st) ::unlink(tmp.c_str());
  return st;
}

Status BuildDirectory(const fs::path& target, int mode, const std::function<Status(const fs::path&)>& build) {
  std::error_code ec;
  if (fs::exists(target, ec)) {
    if (!fs::is_directory(target, ec) || !fs::is_empty(target, ec))
      return Fail(ErrorCode::kInvalidArgument, target.string() + " is not empty; choose a new directory");
    if (::chmod(target.c_str(), static_cast<mode_t>(mode)) != 0)
      return std::unexpected(IoError(target, "cannot set the mode of"));
    auto st = build(target);
    if (!st) {
      for (const auto& e : fs::directory_iterator(target, ec)) fs::remove_all(e.path(), ec);
      return st;
    }
    return SyncDirectory(target);
  }
  fs::path tmp = TempPathFor(target.lexically_normal());
  SEALDROP_TRY(EnsureDirectory(tmp, mode));
  auto st = build(tmp);
  if (st) st = CommitRename(tmp, target);
  if (!st) fs::remove_all(tmp, ec);
  return st;
}

Status EnsureDirectory(const fs::path& path, int mode) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Fail(ErrorCode::kIo, "cannot create directory " + path.string() + ": " + ec.message());
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0)
    return std::unexpected(IoError(path, "cannot set the mode of"));
  return Ok();
}

Status ReadExactAt(int fd, std::span<uint8_t> out, uint64_t offset) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t r = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Fail(ErrorCode::kIo, std::string("cannot read the package: ") + std::strerror(errno));
    if (r == 0) return Fail(ErrorCode::kMalformed, "the package is truncated");
    done += static_cast<size_t>(r);
  }
  return Ok();
}

Status CheckPrivateFileMode(const std::filesystem::path& path, std::string_view what) {
  const std::string name = std::string(what) + " " + path.string();
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    return Fail(ErrorCode::kIo, "cannot read " + name + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return Fail(ErrorCode::kInvalidArgument, name + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Fail(ErrorCode::kRefused,
                name + " can be read by other users (mode " + mode + "); restrict it with `chmod 600`");
  }
  return Ok();
}

}  // namespace sealdrop
