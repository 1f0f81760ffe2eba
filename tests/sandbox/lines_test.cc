// sys::for_each_line, sys::SharedLib and fs::fd_path: the shared line splitter, library loader
// and the name of an fd in messages.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <string>
#include <vector>

#include "sandbox/sys/dl.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/lines.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {
namespace {

std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out;
  sys::for_each_line(text, [&](std::string_view line) { out.emplace_back(line); });
  return out;
}

using Lines = std::vector<std::string>;

TEST(LinesTest, ALastLineWithoutANewlineCounts) {
  EXPECT_EQ(lines("a\nb"), (Lines{"a", "b"}));
  EXPECT_EQ(lines("a\nb\n"), (Lines{"a", "b"}));
  EXPECT_EQ(lines("single"), (Lines{"single"}));
}

TEST(LinesTest, EmptyLinesArePassedOnAndAnEmptyTextHasNone) {
  EXPECT_EQ(lines(""), Lines{});
  EXPECT_EQ(lines("\n"), (Lines{""}));
  EXPECT_EQ(lines("a\n\nb\n\n"), (Lines{"a", "", "b", ""}));
}

TEST(LinesTest, CarriageReturnsAreKept) {
  EXPECT_EQ(lines("a\r\nb\r\n"), (Lines{"a\r", "b\r"}));
}

TEST(LinesTest, FalseStopsTheWalk) {
  Lines seen;
  const bool finished = sys::for_each_line("a\nstop\nc\n", [&](std::string_view line) {
    seen.emplace_back(line);
    return line != "stop";
  });
  EXPECT_FALSE(finished);
  EXPECT_EQ(seen, (Lines{"a", "stop"}));
  EXPECT_TRUE(sys::for_each_line("a\nb", [](std::string_view) { return true; }));
}

TEST(SharedLibTest, ResolvesSymbolsOnce) {
  static sys::SharedLib lib("libc.so.6", "libc", "libc6");
  int calls = 0;
  decltype(&::getpid) get = nullptr;
  for (int i = 0; i < 2; ++i) {
    auto r = lib.load([&](sys::SharedLib& so) {
      ++calls;
      so.resolve(get, "getpid");
    });
    ASSERT_TRUE(r) << r.error().message();
  }
  EXPECT_EQ(calls, 1);
  ASSERT_NE(get, nullptr);
  EXPECT_EQ(get(), ::getpid());
}

TEST(SharedLibTest, AMissingLibraryOrSymbolIsAnErrorWithTheInstallHint) {
  static sys::SharedLib missing("libsandrun-none.so.1", "libsandrun-none", "sandrun-none");
  auto r = missing.load([](sys::SharedLib&) { ADD_FAILURE() << "filled without a library"; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message().rfind("cannot load libsandrun-none: libsandrun-none.so.1: cannot open", 0), 0u)
      << r.error().message();
  EXPECT_EQ(r.error().hint_text(), "install it with: apt-get install sandrun-none");

  static sys::SharedLib libc("libc.so.6", "libc", "libc6");
  void (*f)() = nullptr;
  auto s = libc.load([&](sys::SharedLib& so) {
    so.resolve(f, "sandrun_no_such_symbol");
    so.resolve(f, "sandrun_nor_this");
  });
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "cannot load libc: libc.so.6 has no sandrun_no_such_symbol");
}

TEST(FdPathTest, NamesWhatTheFdRefersToAndKeepsErrno) {
  TempDir dir;
  write_file(dir / "file", "");
  UniqueFd fd(::open((dir / "file").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  errno = EXDEV;
  EXPECT_EQ(fs::fd_path(fd.get()), fs::absolute(dir / "file"));
  EXPECT_EQ(fs::fd_path(-1), "fd -1");
  EXPECT_EQ(errno, EXDEV);
  auto e = Error::sys("read {}", fs::fd_path(1000000));
  EXPECT_EQ(e.message(), "read fd 1000000: Invalid cross-device link");
}

}  // namespace
}  // namespace sandrun::testing
