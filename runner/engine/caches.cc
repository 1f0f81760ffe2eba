// Named cache volumes: naming, creation with the job user's ownership, lock or copy-on-write.
#include "runner/engine/caches.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "runner/engine/job.h"
#include "sandbox/sys/fs.h"
#include "sandbox/userns.h"

namespace sandrun::runner {
namespace {

constexpr size_t kMaxNameStem = 48;

uint32_t fnv1a(std::string_view text) {
  uint32_t h = 2166136261u;  // stable across builds and processes: names live on disk
  for (unsigned char c : text) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

// "~/.cache/pip" -> "cache-pip": letters, digits, '.', '_' and '-' kept, runs of anything
// else (the '/') become one '-', no leading dots or dashes (never "." or "..").
std::string file_safe(std::string_view path) {
  std::string out;
  for (char c : path) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (ok) {
      out += c;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  size_t start = out.find_first_not_of(".-");
  out = start == std::string::npos ? std::string() : out.substr(start);
  if (out.size() > kMaxNameStem) out.resize(kMaxNameStem);
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "cache" : out;
}

// The host ids the container's uid/gid have on disk (through the user namespace's maps).
std::pair<uid_t, gid_t> host_owner(const sandbox::ContainerPlan& spec) {
  if (!spec.userns.enabled) return {spec.uid, spec.gid};
  auto uid = sandbox::userns::to_host(spec.userns.uid_map, spec.uid);
  auto gid = sandbox::userns::to_host(spec.userns.gid_map, spec.gid);
  return {uid ? *uid : ::geteuid(), gid ? *gid : ::getegid()};
}

// Creates the cache dir on first use, owned by the job's user. Rootless, ids other than the
// caller's cannot be given away (the dir stays the caller's, the container's root).
Result<void> create_cache(const std::string& dir, const sandbox::ContainerPlan& spec) {
  if (::mkdir(dir.c_str(), 0755) < 0) {
    if (errno == EEXIST && fs::is_dir(dir)) return {};
    return Error::sys("create cache {}", dir);
  }
  const auto [uid, gid] = host_owner(spec);
  if (::chown(dir.c_str(), uid, gid) < 0 && !(errno == EPERM && ::geteuid() != 0))
    return Error::sys("chown cache {} to {}:{}", dir, uid, gid);
  return {};
}

}  // namespace

Result<CacheMount> cache_mount(std::string_view written, std::string_view home) {
  std::string target;
  if (written == "~" || written.rfind("~/", 0) == 0) {
    if (home.empty() || home[0] != '/') return Error::msg("cache {:?}: the job's user has no home directory", written);
    target = std::string(home) + std::string(written.substr(1));
  } else if (!written.empty() && written[0] == '/') {
    target = std::string(written);
  } else {
    return Error::msg("cache {:?}: expected an absolute path or one starting with ~/", written);
  }
  for (auto part : fs::path_components(target)) {
    if (part == "..") return Error::msg("cache {:?}: '..' is not allowed", written);
  }
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  if (target == "/") return Error::msg("cache {:?}: not on /", written);
  return CacheMount{fmt::format("{}-{:08x}", file_safe(written), fnv1a(written)), target};
}

std::vector<std::string> cache_targets(const std::vector<CacheMount>& caches) {
  std::vector<std::string> out;
  for (const auto& c : caches) out.push_back(c.target);
  return out;
}

std::string caches_dir(const std::string& state_root) { return state_root + "/caches"; }

Result<CacheLease> acquire_caches(const std::string& state_root, const std::vector<CacheMount>& caches,
                                  const Slot& slot, const sandbox::ContainerPlan& spec) {
  CacheLease lease;  // on a failure, its locks go with it
  if (caches.empty()) return lease;
  const std::string root = caches_dir(state_root);
  SANDRUN_TRY(fs::mkdirs(root, 0755));
  for (size_t i = 0; i < caches.size(); ++i) {
    const CacheMount& c = caches[i];
    const std::string dir = root + "/" + c.name;
    SANDRUN_TRY(create_cache(dir, spec));
    auto lock = fs::lock_file(dir + ".lock", /*exclusive=*/true, /*wait=*/false);
    sandbox::Bind bind{dir, c.target, false};
    if (lock) {
      lease.locks_.push_back(std::move(*lock));
    } else if (lock.error().code() == EWOULDBLOCK) {
      // Another container writes it: this one gets a private view, its writes discarded.
      const std::string cow = fmt::format("{}/{}", slot.cow, i);
      bind.copy_on_write = true;
      bind.overlay_upper = cow + "/upper";
      bind.overlay_work = cow + "/work";
      SANDRUN_TRY(fs::mkdirs(bind.overlay_upper, 0755));
      SANDRUN_TRY(fs::mkdirs(bind.overlay_work, 0755));
      lease.notes.push_back(fmt::format("cache {} is in use by another job: this job gets a copy-on-write view "
                                        "of it, its writes there are discarded", c.target));
    } else {
      return std::move(lock.error().wrap(fmt::format("lock cache {}", dir)));
    }
    lease.binds.push_back(std::move(bind));
  }
  return lease;
}

}  // namespace sandrun::runner
