// Micro-benchmarks of one container's start-to-exit through the library (no loop, no CLI),
// with the per-container directories created and removed inside the timed region, as a run
// pays them; and the pieces around it (the directories alone, a bare spawn) to split the cost.
#include <benchmark/benchmark.h>

#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>

#include "bench/micro_env.h"
#include "sandbox/dev_nodes.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp_filter.h"
#include "sandbox/sys/fs.h"

extern char** environ;

namespace sandrun::bench {
namespace {

// Per-container directories like the runner's: DIR/{upper,work,root}.
struct ContainerDirs {
  std::string dir;
  bool make(const std::string& base, long n) {
    dir = base + "/c" + std::to_string(n);
    if (::mkdir(dir.c_str(), 0700) < 0) return false;
    for (const char* sub : {"/upper", "/work", "/root"}) {
      if (::mkdir((dir + sub).c_str(), 0755) < 0) return false;
    }
    return true;
  }
};

// Runs one container to its end; "" when it exited 0, else what went wrong.
// `dev_dir`: the device nodes' directory, shared by every iteration as a slot's is by its
// containers (made at the first start, then checked at each).
std::string run_once(const sandbox::ContainerPlan& spec, const ContainerDirs& dirs, const std::string& dev_dir) {
  sandbox::Placement place;
  place.upper_dir = dirs.dir + "/upper";
  place.work_dir = dirs.dir + "/work";
  place.root_dir = dirs.dir + "/root";
  place.dev_dir = dev_dir;
  for (const auto& b : spec.binds) {
    if (b.copy_on_write) place.cow_layers.emplace_back(dirs.dir + "/ws-upper", dirs.dir + "/ws-work");
  }
  auto sb = sandbox::Sandbox::start(spec, place);
  if (!sb) return sb.error().message();
  UniqueFd status = sb->take_status();
  sb->take_stdout().reset();  // /bin/true writes nothing
  sb->take_stderr().reset();
  struct pollfd p = {sb->pidfd(), POLLIN, 0};
  while (::poll(&p, 1, -1) < 0) {
    if (errno != EINTR) return "poll the pidfd: " + std::string(std::strerror(errno));
  }
  auto ws = sb->wait();
  if (!ws) return ws.error().message();
  auto bytes = fs::read_fd(status.get());  // every writer is gone: reads to end-of-file
  if (!bytes) return bytes.error().message();
  sandbox::StatusDecoder dec;
  dec.feed(bytes->data(), bytes->size());
  auto outcome = sandbox::interpret(spec, place, dec.records(), *ws);
  if (outcome.ok()) return "";
  if (outcome.error) return outcome.error->message();
  return "the container did not exit 0";
}

// Where the per-container directories go: arg 0 = the temp dir (a disk here, like
// /var/lib/sandrun), 1 = /dev/shm (tmpfs). Empty (with the reason skipped) when unusable.
std::string dirs_base(benchmark::State& state, int64_t shm, const char* name) {
  const std::string& top = shm ? shm_dir() : temp_dir();
  if (top.empty()) {
    state.SkipWithError("/dev/shm is not a writable tmpfs");
    return "";
  }
  std::string base = top + "/" + name;
  if (auto r = fs::mkdirs(base); !r) {
    state.SkipWithError(r.error().message().c_str());
    return "";
  }
  return base;
}

// Args: init (sandrun-init as PID 1 or not), net (own network namespace, the default),
// shm (the per-container directories on tmpfs instead of the disk), hard (1: sandrun's default
// hardening, masked paths and the seccomp filter; 2: masked paths only; 0: neither).
void BM_ContainerTrue(benchmark::State& state) {
  if (!is_root()) {
    state.SkipWithError("needs root (containers are real)");
    return;
  }
  std::string err;
  const std::string& layer = busybox_layer(&err);
  if (layer.empty()) {
    state.SkipWithError(("cannot make the busybox layer: " + err).c_str());
    return;
  }
  const std::string base = dirs_base(state, state.range(2), "containers");
  if (base.empty()) return;
  sandbox::ContainerPlan spec;
  spec.name = "bench";
  spec.hostname = "bench";
  spec.lower_dirs = {layer};
  spec.argv = {"/bin/true"};
  spec.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"};
  spec.init = state.range(0) != 0;
  spec.new_net = state.range(1) != 0;
  spec.hardening.mask_paths = state.range(3) != 0;
  if (state.range(3) == 1) {
    auto filter = sandbox::compile_default_seccomp(spec.hardening.capabilities);
    if (!filter) {
      state.SkipWithError(filter.error().message().c_str());
      return;
    }
    spec.hardening.seccomp = std::move(*filter);
  }
  long n = 0;
  for (auto _ : state) {
    ContainerDirs dirs;
    if (!dirs.make(base, n++)) {
      state.SkipWithError("cannot create the container's directories");
      break;
    }
    std::string failure = run_once(spec, dirs, base + "/dev");
    (void)fs::remove_tree(dirs.dir);
    if (!failure.empty()) {
      state.SkipWithError(failure.c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
// The parent's share of a container's /dev per start: the slot's nodes checked (all fine, as
// at every start after the first) and the directory's read-only clone made and closed.
void BM_DeviceTree(benchmark::State& state) {
  if (!is_root()) {
    state.SkipWithError("needs root (mknod, open_tree)");
    return;
  }
  const std::string base = dirs_base(state, 0, "devices");
  if (base.empty()) return;
  for (auto _ : state) {
    auto tree = sandbox::device_tree(base + "/dev");
    if (!tree) {
      state.SkipWithError(tree.error().message().c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_DeviceTree)->Unit(benchmark::kMicrosecond);

BENCHMARK(BM_ContainerTrue)
    ->ArgNames({"init", "net", "shm", "hard"})
    ->Args({1, 1, 0, 1})  // `sandrun exec -- /bin/true`
    ->Args({0, 1, 0, 1})  // `sandrun exec --no-init -- /bin/true`
    ->Args({1, 0, 0, 1})  // network = "host"
    ->Args({0, 0, 0, 1})
    ->Args({0, 0, 0, 2})  // the same with masked paths but without seccomp
    ->Args({0, 0, 0, 0})  // the same without masked paths and seccomp
    ->Args({1, 1, 1, 1})  // the first, with the writable layer on tmpfs
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);

// A checkout of `files` files (100 per directory), made once per size under the temp dir.
const std::string& checkout(long files, std::string* error) {
  static std::map<long, std::string> made;
  auto it = made.find(files);
  if (it != made.end()) return it->second;
  const std::string dir = temp_dir() + "/checkout-" + std::to_string(files);
  for (long i = 0; i < files; ++i) {
    const std::string sub = dir + "/d" + std::to_string(i / 100);
    if (i % 100 == 0) {
      if (auto r = fs::mkdirs(sub); !r) {
        *error = r.error().message();
        static const std::string none;
        return none;
      }
    }
    UniqueFd f(::open((sub + "/f" + std::to_string(i) + ".c").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (!f || ::write(f.get(), "int x;\n", 7) != 7) {
      *error = "cannot write the checkout";
      static const std::string none;
      return none;
    }
  }
  return made[files] = dir;
}

// One container's start-to-exit with a workspace of `files` files at /workspace: arg mode
// 0 = none, 1 = bind (rw), 2 = copy-on-write overlay (upper and work dirs per container, as in
// its slot). The overlay's cost must not grow with the checkout: nothing is copied.
void BM_ContainerWorkspace(benchmark::State& state) {
  if (!is_root()) {
    state.SkipWithError("needs root (containers are real)");
    return;
  }
  std::string err;
  const std::string& layer = busybox_layer(&err);
  const std::string& tree = layer.empty() ? layer : checkout(state.range(1), &err);
  if (layer.empty() || tree.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  const std::string base = dirs_base(state, 0, "workspaces");
  if (base.empty()) return;
  sandbox::ContainerPlan spec;
  spec.name = spec.hostname = "bench";
  spec.lower_dirs = {layer};
  spec.argv = {"/bin/true"};
  spec.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"};
  long n = 0;
  for (auto _ : state) {
    ContainerDirs dirs;
    if (!dirs.make(base, n++) || ::mkdir((dirs.dir + "/ws-upper").c_str(), 0755) < 0 ||
        ::mkdir((dirs.dir + "/ws-work").c_str(), 0755) < 0) {
      state.SkipWithError("cannot create the container's directories");
      break;
    }
    spec.binds.clear();
    if (state.range(0) > 0) spec.binds.push_back({tree, "/workspace"});
    if (state.range(0) == 2) {
      spec.binds.back().copy_on_write = true;  // run_once gives it DIR/ws-upper and ws-work
    }
    std::string failure = run_once(spec, dirs, base + "/dev");
    (void)fs::remove_tree(dirs.dir);
    if (!failure.empty()) {
      state.SkipWithError(failure.c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ContainerWorkspace)
    ->ArgNames({"mode", "files"})
    ->Args({0, 0})
    ->Args({1, 10})
    ->Args({1, 100000})
    ->Args({2, 10})
    ->Args({2, 100000})
    // The minimum of the repetitions too: on a shared machine the mean and median move with the
    // neighbours' load, the minimum much less.
    ->ComputeStatistics("min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); })
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);

// The per-container directories alone: four mkdirs and the removal of the tree.
// Arg shm: on tmpfs instead of the disk.
void BM_ContainerDirs(benchmark::State& state) {
  const std::string base = dirs_base(state, state.range(0), "dirs");
  if (base.empty()) return;
  long n = 0;
  for (auto _ : state) {
    ContainerDirs dirs;
    if (!dirs.make(base, n++)) {
      state.SkipWithError("cannot create the container's directories");
      break;
    }
    (void)fs::remove_tree(dirs.dir);
  }
}
BENCHMARK(BM_ContainerDirs)->ArgName("shm")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);

// The floor: posix_spawn of the host's /bin/true and waitpid, from this same process.
void BM_BareSpawnTrue(benchmark::State& state) {
  char arg0[] = "/bin/true";
  char* argv[] = {arg0, nullptr};
  for (auto _ : state) {
    pid_t pid;
    if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv, environ) != 0) {
      state.SkipWithError("posix_spawn /bin/true failed");
      break;
    }
    int ws = 0;
    while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
      state.SkipWithError("/bin/true failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_BareSpawnTrue)->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sandrun::bench
