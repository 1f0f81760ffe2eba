// Shared state of the micro-benchmarks: temp dirs (disk and tmpfs) and the built-in busybox layer.
#include "bench/micro_env.h"

#include <linux/magic.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>

#include "cache/store.h"
#include "sandbox/sys/fs.h"

namespace sandrun::bench {
namespace {

struct TempDir {
  std::string path;
  explicit TempDir(const std::string& base, bool required = true) {
    std::string tmpl = base + "/sandrun-microbench.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      if (!required) return;
      std::perror("mkdtemp");
      std::exit(1);
    }
    path = tmpl;
  }
  ~TempDir() {
    if (path.empty()) return;
    if (auto r = fs::remove_tree(path); !r) {
      std::fprintf(stderr, "sandrun-microbench: cannot remove %s: %s\n", path.c_str(),
                   r.error().message().c_str());
    }
  }
};

}  // namespace

const std::string& temp_dir() {
  const char* base = ::getenv("TMPDIR");
  static TempDir dir(base && *base ? base : "/tmp");
  return dir.path;
}

const std::string& shm_dir() {
  static const std::string none;
  struct statfs st;
  if (::statfs("/dev/shm", &st) < 0 || st.f_type != TMPFS_MAGIC) return none;
  static TempDir dir("/dev/shm", /*required=*/false);
  return dir.path;
}

const std::string& busybox_layer(std::string* error) {
  static std::string layer, failure;
  static bool done = false;
  if (!done) {
    done = true;
    auto store = cache::Store::open(temp_dir() + "/cache");
    if (!store) {
      failure = store.error().message();
    } else if (auto image = store->ensure(cache::kBuiltinImage); !image) {
      failure = image.error().message();
    } else if (image->layers.size() != 1) {
      failure = "the built-in busybox image should have exactly one layer";
    } else {
      layer = store->layer_path(image->layers.front().diff_id);
    }
  }
  if (error) *error = failure;
  return layer;
}

bool is_root() { return ::geteuid() == 0; }

}  // namespace sandrun::bench
