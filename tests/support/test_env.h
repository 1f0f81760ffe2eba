// Shared test helpers: capability checks, temp dirs, running the sandrun binary.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sandrun::testing {

// True when SANDRUN_TESTS_MUST_WORK=1 or CI=true: a missing capability then fails the test.
bool must_work();

// Skips the test with `reason` when `cond` is false; fails instead under must_work().
#define SANDRUN_REQUIRE(cond, reason)                                        \
  do {                                                                       \
    if (!(cond)) {                                                           \
      if (::sandrun::testing::must_work()) {                                 \
        FAIL() << "required for this test (SANDRUN_TESTS_MUST_WORK=1): " << (reason); \
      } else {                                                               \
        GTEST_SKIP() << (reason);                                            \
      }                                                                      \
    }                                                                        \
  } while (0)

// Skips (or fails under must_work) unless running as root with the kernel features the
// sandbox needs (namespaces, overlayfs).
#define SANDRUN_REQUIRE_ROOT() SANDRUN_REQUIRE(::sandrun::testing::is_root(), "needs root")
bool is_root();

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The owner of the tests' checkouts (workspaces), as a CI runner's user owns its checkout: as
// root, sandrun runs containers in a user namespace in which a workspace owned by root shows as
// the overflow id (read-only to the job), and one owned by another user as the job's root.
inline constexpr unsigned kCheckoutOwner = 4242;
// chown -R `path` to kCheckoutOwner:kCheckoutOwner (fails the test when it cannot).
void give_to_checkout_owner(const std::string& path);

void write_file(const std::string& path, const std::string& content, int mode = 0644);
std::string read_file(const std::string& path);

struct CommandResult {
  int status = -1;         // exit code, or 128 + signal
  std::string out;         // stdout
  std::string err;         // stderr
  std::chrono::milliseconds elapsed{0};
};

// Runs argv (argv[0] is looked up in PATH) with stdin from /dev/null, capturing output.
// `env_extra` entries ("NAME=value") are added to the environment.
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::vector<std::string>& env_extra = {});

// The built sandrun binary and the static probe (paths compiled in by CMake).
std::string sandrun_bin();
std::string probe_bin();
// The static line-protocol server (support/kv_server.cc): a stand-in for redis.
std::string kv_server_bin();

// Runs `sandrun --root ROOT args...`.
CommandResult run_sandrun(const std::string& root, const std::vector<std::string>& args,
                          const std::vector<std::string>& env_extra = {});

// A command running in the background (output to files), to be signalled and then finished.
class Background {
 public:
  explicit Background(const std::vector<std::string>& argv);
  ~Background();
  int pid() const { return pid_; }
  void signal(int sig);
  // Waits for the exit and reads the output. Its `elapsed` runs from the first signal() when
  // one was sent (how long the run took to react: a loaded machine's slow start-up is not in
  // it), else from the start.
  CommandResult finish();

 private:
  int pid_ = -1;
  std::string out_path_, err_path_;
  std::chrono::steady_clock::time_point start_;
  std::optional<std::chrono::steady_clock::time_point> signalled_;
};

// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held. Waits
// for something a test started use kStartTimeout: a loaded CI machine (both cores busy, ASan)
// can take seconds to start a container, and a generous bound costs nothing when all is well.
inline constexpr std::chrono::milliseconds kStartTimeout{30'000};
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

}  // namespace sandrun::testing
