// A blocking harness that starts real sandboxes on a busybox root and collects everything.
#include "tests/sandbox/sandbox_harness.h"

#include <poll.h>
#include <unistd.h>


#include "sandbox/sys/fs.h"
#include "tests/support/rootfs.h"

namespace sandrun::testing {

void SandboxFixture::SetUp() {
  SANDRUN_REQUIRE_ROOT();
  layer_ = tmp_ / "layer";
  std::string err = make_busybox_rootfs(layer_);
  SANDRUN_REQUIRE(err.empty(), err);
}

TestPlan SandboxFixture::spec(std::vector<std::string> argv) {
  std::string dir = tmp_ / ("c" + std::to_string(next_++));
  TestPlan s;
  s.name = "test";
  s.hostname = "test";
  s.lower_dirs = {layer_};
  s.place.upper_dir = dir + "/upper";
  s.place.work_dir = dir + "/work";
  s.place.root_dir = dir + "/root";
  s.place.dev_dir = dir + "/dev";  // made by Sandbox::start
  for (auto* d : {&s.place.upper_dir, &s.place.work_dir, &s.place.root_dir}) EXPECT_TRUE(fs::mkdirs(*d).ok());
  s.argv = std::move(argv);
  s.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root"};
  return s;
}

SandboxRun SandboxFixture::sh(const std::string& script, bool init) {
  auto s = spec({"/bin/sh", "-c", script});
  s.init = init;
  return run(s);
}

SandboxRun SandboxFixture::run(const TestPlan& spec, int signal,
                               std::chrono::milliseconds signal_after) {
  SandboxRun res;
  auto t0 = std::chrono::steady_clock::now();
  auto sb = sandbox::Sandbox::start(spec, spec.place);
  if (!sb) {
    res.start_error = sb.error().message();
    return res;
  }
  res.started = true;
  UniqueFd fds[3] = {sb->take_stdout(), sb->take_stderr(), sb->take_status()};
  std::string status_bytes;
  std::string* sinks[3] = {&res.out, &res.err, &status_bytes};
  bool signalled = signal == 0;
  std::optional<int> wait_status;
  for (;;) {
    struct pollfd p[4];
    int n = 0;
    int map[4];
    for (int i = 0; i < 3; ++i) {
      if (fds[i]) {
        p[n] = {fds[i].get(), POLLIN, 0};
        map[n++] = i;
      }
    }
    if (!wait_status) {
      p[n] = {sb->pidfd(), POLLIN, 0};
      map[n++] = 3;
    }
    if (n == 0) break;
    int timeout = -1;
    if (!signalled) {
      auto left = signal_after - std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - t0);
      timeout = left.count() > 0 ? static_cast<int>(left.count()) : 0;
    }
    int rc = ::poll(p, static_cast<nfds_t>(n), timeout);
    if (rc == 0 && !signalled) {
      EXPECT_TRUE(sb->signal(signal).ok());
      signalled = true;
      continue;
    }
    for (int k = 0; k < n; ++k) {
      if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int i = map[k];
      if (i == 3) {
        auto r = sb->try_reap();
        if (r.ok() && r->has_value()) wait_status = **r;
        continue;
      }
      char buf[65536];
      ssize_t got = ::read(fds[i].get(), buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, static_cast<size_t>(got));
      } else {
        fds[i].reset();
      }
    }
  }
  sandbox::StatusDecoder dec;
  dec.feed(status_bytes.data(), status_bytes.size());
  res.outcome = sandbox::interpret(spec, spec.place, dec.records(), *wait_status);
  res.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  return res;
}

}  // namespace sandrun::testing
