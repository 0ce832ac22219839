#include "base/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <gtest/gtest.h>

namespace sealdrop {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(UniqueFd, ClosesOnDestruction) {
  int raw;
  {
    UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    raw = fd.get();
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(UniqueFd, NegativeIsEmpty) {
  UniqueFd fd(-5);
  EXPECT_FALSE(fd);
  EXPECT_EQ(fd.get(), -1);
  UniqueFd none;
  EXPECT_FALSE(none);
}

TEST(UniqueFd, ReleaseGivesUpOwnership) {
  UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int raw = fd.release();
  EXPECT_FALSE(fd);
  EXPECT_EQ(fd.get(), -1);
  fd.reset();  // must not close what was released
  EXPECT_TRUE(IsOpen(raw));
  ::close(raw);
}

TEST(UniqueFd, ResetClosesThePrevious) {
  UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int first = fd.get();
  int second = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  fd.reset(second);
  EXPECT_FALSE(IsOpen(first));
  EXPECT_EQ(fd.get(), second);
  fd.reset();
  EXPECT_FALSE(IsOpen(second));
  EXPECT_FALSE(fd);
}

TEST(UniqueFd, ResetToTheSameDescriptorKeepsItOpen) {
  UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int raw = fd.get();
  fd.reset(raw);
  EXPECT_TRUE(IsOpen(raw));
}

TEST(UniqueFd, MoveTransfersOwnership) {
  UniqueFd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int raw = a.get();
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(b.get(), raw);
  UniqueFd c(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int other = c.get();
  c = std::move(b);
  EXPECT_FALSE(IsOpen(other));
  EXPECT_EQ(c.get(), raw);
  EXPECT_TRUE(IsOpen(raw));
}

TEST(UniqueFd, DestructorKeepsErrno) {
  {
    UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    errno = ENOENT;
  }
  EXPECT_EQ(errno, ENOENT);
}

TEST(UniqueFd, MakePipeOwnsBothEnds) {
  int r, w;
  {
    UniquePipe p;
    ASSERT_TRUE(MakePipe(O_CLOEXEC, &p));
    r = p.read.get();
    w = p.write.get();
    ASSERT_EQ(::write(w, "x", 1), 1);
    char c = 0;
    ASSERT_EQ(::read(r, &c, 1), 1);
    EXPECT_EQ(c, 'x');
  }
  EXPECT_FALSE(IsOpen(r));
  EXPECT_FALSE(IsOpen(w));
}

}  // namespace
}  // namespace sealdrop
