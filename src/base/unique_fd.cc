#include "base/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace sealdrop {

void UniqueFd::reset(int fd) {
  int old = std::exchange(fd_, fd < 0 ? -1 : fd);
  if (old >= 0 && old != fd_) {
    int saved = errno;
    // Never retried, even on EINTR: see the header.
    ::close(old);
    errno = saved;
  }
}

bool MakePipe(int flags, UniquePipe* out) {
  int p[2];
  if (::pipe2(p, flags) != 0) return false;
  out->read.reset(p[0]);
  out->write.reset(p[1]);
  return true;
}

}  // namespace sealdrop
