// Passing fds over a Unix socket (sandbox/sys/fd_passing.h): what arrives, and that a message
// carrying more than the receiver takes leaves no fd open.
#include "sandbox/sys/fd_passing.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include <gtest/gtest.h>

namespace sandrun::sys {
namespace {

size_t open_fds() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d)) ++n;
    ::closedir(d);
  }
  return n;
}

class FdPassing : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv_), 0); }
  void TearDown() override {
    ::close(sv_[0]);
    ::close(sv_[1]);
  }
  int sv_[2] = {-1, -1};
};

TEST_F(FdPassing, DataAndFdsArriveCloseOnExecAndNameTheSameFiles) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  const int sent[] = {p[0], p[1]};
  ASSERT_EQ(send_fds(sv_[0], "ab", 2, sent, 2), 2);
  char buf[4] = {};
  int got[4] = {-1, -1, -1, -1};
  size_t n = 0;
  bool truncated = true;
  ASSERT_EQ(recv_fds(sv_[1], buf, sizeof buf, got, 4, &n, &truncated), 2);
  EXPECT_EQ(std::string(buf, 2), "ab");
  EXPECT_FALSE(truncated);
  ASSERT_EQ(n, 2u);
  for (size_t i = 0; i < n; ++i) {
    struct stat a{}, b{};
    ASSERT_EQ(::fstat(sent[i], &a), 0);
    ASSERT_EQ(::fstat(got[i], &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino);
    EXPECT_EQ(::fcntl(got[i], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    ::close(got[i]);
  }
  ::close(p[0]);
  ::close(p[1]);
}

TEST_F(FdPassing, AMessageWithoutFdsIsOnlyItsData) {
  ASSERT_EQ(send_fds(sv_[0], "x", 1, nullptr, 0), 1);
  char c = 0;
  int fd = -1;
  size_t n = 9;
  bool truncated = true;
  ASSERT_EQ(recv_fds(sv_[1], &c, 1, &fd, 1, &n, &truncated), 1);
  EXPECT_EQ(c, 'x');
  EXPECT_EQ(n, 0u);
  EXPECT_FALSE(truncated);
}

TEST_F(FdPassing, MoreFdsThanTheReceiverTakesAreAllClosedAndSaySo) {
  const size_t before = open_fds();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  const int sent[] = {p[0], p[1], p[0]};
  ASSERT_EQ(send_fds(sv_[0], "y", 1, sent, 3), 1);
  ::close(p[0]);
  ::close(p[1]);
  char c = 0;
  int got[2] = {-1, -1};
  size_t n = 9;
  bool truncated = false;
  ASSERT_EQ(recv_fds(sv_[1], &c, 1, got, 2, &n, &truncated), 1);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(open_fds(), before) << "a received fd was left open";
}

TEST_F(FdPassing, TooManyFdsForOneMessageAreRefused) {
  int fds[kMaxPassedFds + 1];
  for (auto& fd : fds) fd = sv_[0];
  errno = 0;
  EXPECT_EQ(send_fds(sv_[0], "z", 1, fds, kMaxPassedFds + 1), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(send_fds(sv_[0], "z", 1, fds, kMaxPassedFds), 1);
  char c = 0;
  int got[kMaxPassedFds];
  size_t n = 0;
  bool truncated = true;
  ASSERT_EQ(recv_fds(sv_[1], &c, 1, got, kMaxPassedFds, &n, &truncated), 1);
  EXPECT_FALSE(truncated);
  EXPECT_EQ(n, kMaxPassedFds);
  for (size_t i = 0; i < n; ++i) ::close(got[i]);
}

TEST_F(FdPassing, TheClosedPeerIsEndOfFile) {
  ::close(sv_[0]);
  sv_[0] = -1;
  char c = 0;
  int fd = -1;
  size_t n = 0;
  bool truncated = false;
  EXPECT_EQ(recv_fds(sv_[1], &c, 1, &fd, 1, &n, &truncated), 0);
  EXPECT_EQ(recv_fds(sv_[1], &c, 1, &fd, 1, &n, &truncated, MSG_DONTWAIT), 0);
}

}  // namespace
}  // namespace sandrun::sys
