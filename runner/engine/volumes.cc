// Named volumes under ROOT/volumes (see volumes.h for the layout and the ownership rules).
#include "runner/engine/volumes.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {
namespace {

using nlohmann::json;

constexpr std::string_view kMeta = "volume.json";

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

uint64_t dir_bytes(int dirfd) {
  DIR* d = ::fdopendir(dirfd);
  if (!d) {
    ::close(dirfd);
    return 0;
  }
  uint64_t total = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    if (S_ISREG(st.st_mode)) total += static_cast<uint64_t>(st.st_size);
    if (!S_ISDIR(st.st_mode)) continue;
    int sub = ::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub >= 0) total += dir_bytes(sub);
  }
  ::closedir(d);
  return total;
}

}  // namespace

uint64_t tree_bytes(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  return fd < 0 ? 0 : dir_bytes(fd);
}

VolumeStore::VolumeStore(std::string state_root) : dir_(fs::join(state_root, "volumes")) {}

bool VolumeStore::valid_name(std::string_view name) {
  if (name.size() < 2 || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-';
  });
}

Result<void> VolumeStore::write_meta(const std::string& vol_dir, const Volume& v) const {
  json j = {{"Name", v.name},   {"Labels", v.labels},       {"Created", v.created},
            {"CreatedNsec", v.created_nsec}, {"Anonymous", v.anonymous}, {"Owned", v.owned}};
  return fs::write_file_atomic(fs::join(vol_dir, kMeta), j.dump() + "\n", 0600);
}

Result<Volume> VolumeStore::load(const std::string& name) const {
  const std::string vol_dir = fs::join(dir_, name);
  const std::string path = fs::join(vol_dir, kMeta);
  std::string text = SANDRUN_TRY(fs::read_file(path));
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return Error::msg("{}: not a JSON object", path);
  Volume v;
  v.name = name;
  try {
    if (j.contains("Labels") && j["Labels"].is_object()) v.labels = j["Labels"].get<std::map<std::string, std::string>>();
    v.created = j.value("Created", int64_t{0});
    v.created_nsec = j.value("CreatedNsec", int64_t{0});
    v.anonymous = j.value("Anonymous", false);
    v.owned = j.value("Owned", false);
  } catch (const json::exception& e) {
    return Error::msg("{}: {}", path, e.what());
  }
  v.mountpoint = fs::join(vol_dir, "_data");
  return v;
}

void VolumeStore::collect_leftovers() const {
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return;
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n.starts_with(".new-") || n.starts_with(".del-")) stale.emplace_back(n);
  }
  ::closedir(d);
  for (const auto& n : stale) {
    // A .new- entry may be a create in progress in this process: only old ones are stale.
    struct stat st {};
    if (n.starts_with(".new-") &&
        (::stat(fs::join(dir_, n).c_str(), &st) < 0 || ::time(nullptr) - st.st_mtime < 60))
      continue;
    if (auto r = fs::remove_tree(fs::join(dir_, n)); !r) log::warn("volumes: {}", r.error().message());
  }
}

Result<Volume> VolumeStore::create(std::string_view name, const std::map<std::string, std::string>& labels, uid_t uid,
                                   gid_t gid) {
  Volume v;
  v.anonymous = name.empty();
  v.name = v.anonymous ? random_hex(32) : std::string(name);
  if (!valid_name(v.name))
    return Error::msg("\"{}\" includes invalid characters for a local volume name, only "
                      "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed",
                      v.name);
  std::lock_guard lock(mu_);
  if (auto have = load(v.name)) return have;
  SANDRUN_TRY(fs::mkdirs(dir_, 0700));
  v.labels = labels;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  v.created = now.tv_sec;
  v.created_nsec = now.tv_nsec;
  v.owned = uid != 0 || gid != 0;
  const std::string tmp = fs::join(dir_, ".new-" + random_hex(8));
  const std::string data = fs::join(tmp, "_data");
  auto made = [&]() -> Result<void> {
    if (::mkdir(tmp.c_str(), 0700) < 0) return Error::sys("create {}", tmp);
    if (::mkdir(data.c_str(), 0755) < 0) return Error::sys("create {}", data);
    if (::chown(data.c_str(), uid, gid) < 0) return Error::sys("chown {} to {}:{}", data, uid, gid);
    // 0755 whatever the umask: the container's users read a volume as they read a directory.
    if (::chmod(data.c_str(), 0755) < 0) return Error::sys("chmod {}", data);
    SANDRUN_TRY(write_meta(tmp, v));
    const std::string final_dir = fs::join(dir_, v.name);
    if (::rename(tmp.c_str(), final_dir.c_str()) < 0) return Error::sys("rename {} to {}", tmp, final_dir);
    return {};
  }();
  if (!made) {
    (void)fs::remove_tree(tmp);
    // Another process made the same name first: theirs is the volume.
    if (auto have = load(v.name)) return have;
    return std::move(made).error().wrap(fmt::format("create volume {}", v.name));
  }
  v.mountpoint = fs::join(fs::join(dir_, v.name), "_data");
  return v;
}

Result<std::optional<Volume>> VolumeStore::find(std::string_view name) const {
  if (!valid_name(name)) return std::optional<Volume>{};
  const std::string vol_dir = fs::join(dir_, name);
  if (!fs::is_dir(vol_dir)) return std::optional<Volume>{};
  auto v = load(std::string(name));
  if (!v) return std::move(v).error();
  return std::optional<Volume>(v.take());
}

Result<std::vector<Volume>> VolumeStore::list() const {
  std::vector<Volume> out;
  collect_leftovers();
  DIR* d = ::opendir(dir_.c_str());
  if (!d) {
    if (errno == ENOENT) return out;
    return Error::sys("open {}", dir_);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    if (valid_name(e->d_name)) names.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    auto v = load(n);
    if (!v) {
      log::warn("volumes: skipping {}: {}", n, v.error().message());
      continue;
    }
    out.push_back(v.take());
  }
  return out;
}

Result<bool> VolumeStore::remove(std::string_view name) {
  if (!valid_name(name)) return false;
  std::lock_guard lock(mu_);
  const std::string vol_dir = fs::join(dir_, name);
  const std::string doomed = fs::join(dir_, ".del-" + random_hex(8));
  if (::rename(vol_dir.c_str(), doomed.c_str()) < 0) {
    if (errno == ENOENT) return false;
    return Error::sys("remove volume {}: rename {} to {}", name, vol_dir, doomed);
  }
  SANDRUN_TRY(fs::remove_tree(doomed).wrap(fmt::format("remove volume {}", name)));
  return true;
}

Result<VolumePruneReport> VolumeStore::prune(const std::function<bool(const Volume&)>& pick) {
  VolumePruneReport report;
  for (const Volume& v : SANDRUN_TRY(list())) {
    if (!pick(v)) continue;
    const uint64_t bytes = tree_bytes(v.mountpoint);
    if (!SANDRUN_TRY(remove(v.name))) continue;
    report.removed.push_back(v.name);
    report.bytes += bytes;
  }
  return report;
}

Result<std::string> VolumeStore::mount_dir(std::string_view name, uid_t uid, gid_t gid) {
  Volume v = SANDRUN_TRY(create(name, {}, uid, gid));
  if (v.owned || (uid == 0 && gid == 0)) return v.mountpoint;
  // Created by `volume create` (root's) and first mounted by a container in a user namespace:
  // it becomes that container's root's, if nothing was put in it yet.
  std::lock_guard lock(mu_);
  struct stat st {};
  if (::lstat(v.mountpoint.c_str(), &st) < 0) return Error::sys("stat {}", v.mountpoint);
  if (st.st_uid == 0 && st.st_gid == 0 && st.st_nlink == 2 && ::chown(v.mountpoint.c_str(), uid, gid) < 0)
    return Error::sys("chown {} to {}:{}", v.mountpoint, uid, gid);
  v.owned = true;
  SANDRUN_TRY(write_meta(fs::join(dir_, v.name), v));
  return v.mountpoint;
}

}  // namespace sandrun::runner
