// Files that survive crashes.
//
// WriteFileAtomic writes to a temporary file in the same directory, fsyncs it,
// renames it over the target and fsyncs the directory: after a crash the file
// is either the old one or the new one, never half of each. Secrets are
// written with mode 0600 from the moment the file exists (never widened then
// narrowed).
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "base/bytes.h"
#include "base/error.h"

namespace sealdrop {

// Reads a whole file, refusing files larger than max_size.
Result<Bytes> ReadFile(const std::filesystem::path& path, size_t max_size);
Result<std::string> ReadTextFile(const std::filesystem::path& path, size_t max_size);
// Reads exactly out.size() bytes at `offset` (pread, retried on EINTR).
// kIo on a read error; kMalformed, "the package is truncated", if the file
// ends first (its callers read packages).
Status ReadExactAt(int fd, std::span<uint8_t> out, uint64_t offset);

Status WriteFileAtomic(const std::filesystem::path& path, ByteView data, int mode = 0644);
inline Status WriteFileAtomic(const std::filesystem::path& path, std::string_view text,
                              int mode = 0644) {
  return WriteFileAtomic(path, AsBytes(text), mode);
}

// Creates the directory (and parents) if missing and sets its mode.
// A private key others can read is no longer private. Ok if `path` is a
// regular file (not followed through a link) that neither group nor others
// may access; otherwise kRefused naming `what`, the path and its mode with
// the fix (`chmod 600`), kInvalidArgument for a non-regular file, kIo if it
// cannot be read.
Status CheckPrivateFileMode(const std::filesystem::path& path, std::string_view what);

Status EnsureDirectory(const std::filesystem::path& path, int mode = 0700);

// fsyncs a directory so a rename or create inside it is durable.
Status SyncDirectory(const std::filesystem::path& path);

// Renames a file into place atomically and makes the rename durable.
Status CommitRename(const std::filesystem::path& from, const std::filesystem::path& to);

// Creates the directory `target` with `build` filling it, all or nothing:
// if `target` does not exist it is built in a sibling and renamed into place;
// if it exists and is empty (an administrator made it for a service user,
// whose parent directory is not writable) it is built in place and emptied
// again on failure. A non-empty `target` is refused.
Status BuildDirectory(const std::filesystem::path& target, int mode,
                      const std::function<Status(const std::filesystem::path& dir)>& build);

// A unique path next to `target` for a temporary file.
std::filesystem::path TempPathFor(const std::filesystem::path& target);

}  // namespace sealdrop
