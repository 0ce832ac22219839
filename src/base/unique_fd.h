// UniqueFd: the one owner of a POSIX file descriptor, as UniquePtr<T> with its
// per-type deleter is the one owner of an OpenSSL object.
//
// A descriptor that this process must close lives in a UniqueFd from the
// moment the syscall returns it; a plain int names a descriptor that someone
// else owns (an argument passed to read(), poll(), sendmsg(), ...). Moving
// transfers ownership; the moved-from object holds nothing.
//
// Closing: close(2) is called exactly once and never retried. On Linux the
// descriptor is released even when close() fails with EINTR, so a retry
// could close a descriptor that another thread has just been given (POSIX
// leaves the state unspecified; Linux, the only target, documents the
// release). A failed close therefore loses nothing but the error, which only
// matters for files whose data must have reached the disk: those are
// fsync()ed, and the fsync() result checked, before the owner lets go.
// The destructor leaves errno as it found it, so an error value built from
// errno before a UniqueFd goes out of scope still names the right cause.
//
// Thread safety: none; a UniqueFd is owned by one thread at a time, like any
// value.
#pragma once

#include <utility>

namespace sealdrop {

class UniqueFd {
 public:
  UniqueFd() = default;
  // Takes ownership of fd; a negative value (a failed syscall's result)
  // makes an empty owner.
  explicit UniqueFd(int fd) : fd_(fd < 0 ? -1 : fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  // The descriptor, still owned by this object; -1 when empty.
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

  // Gives up ownership without closing: the caller now owns the result.
  [[nodiscard]] int release() {
    return std::exchange(fd_, -1);
  }
  // Closes the current descriptor (if any) and takes ownership of fd.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Both ends of a pipe2(2), each with its owner.
struct UniquePipe {
  UniqueFd read;
  UniqueFd write;
};
// pipe2(flags); false (errno set) when the kernel refuses.
bool MakePipe(int flags, UniquePipe* out);

}  // namespace sealdrop
