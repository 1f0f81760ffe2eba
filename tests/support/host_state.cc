// What the host looks like after a run: processes, mounts (for "nothing is left behind").
#include "tests/support/host_state.h"

#include <dirent.h>
#include <net/if.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fstream>
#include <sstream>

namespace sandrun::testing {

bool host_has_process(const std::vector<std::string>& argv) {
  std::string want;
  for (auto& a : argv) want += a + '\0';
  DIR* d = ::opendir("/proc");
  bool found = false;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/cmdline", std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    if (ss.str() == want) found = true;
  }
  ::closedir(d);
  return found;
}

std::vector<std::string> mounts_under(const std::string& prefix) {
  std::ifstream f("/proc/self/mountinfo");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mnt;
    ls >> id >> parent >> dev >> root >> mnt;
    if (mnt.rfind(prefix, 0) == 0) out.push_back(mnt);
  }
  return out;
}

std::vector<std::string> loop_devices_under(const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& name : dir_entries("/sys/block")) {
    if (name.rfind("loop", 0) != 0) continue;
    std::ifstream f("/sys/block/" + name + "/loop/backing_file");
    std::string backing;
    if (std::getline(f, backing) && backing.rfind(prefix + "/", 0) == 0) out.push_back("/dev/" + name + " " + backing);
  }
  return out;
}

bool slot_locked(const std::string& dir) {
  int fd = ::open((dir + "/lock").c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  bool locked = ::flock(fd, LOCK_EX | LOCK_NB) < 0;
  ::close(fd);
  return locked;
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// "<pid>-<starttime>" names a live process when /proc/<pid>/stat has that start time.
bool run_alive(const std::string& run) {
  auto dash = run.find('-');
  if (dash == std::string::npos) return true;  // not a run directory of sandrun's
  std::string stat = read_text("/proc/" + run.substr(0, dash) + "/stat");
  auto close = stat.rfind(')');
  if (stat.empty() || close == std::string::npos) return false;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && in >> field; ++i) {
  }
  std::string start = run.substr(dash + 1);
  auto dash2 = start.find('-');
  if (dash2 != std::string::npos) start = start.substr(0, dash2);
  return field == start;
}

}  // namespace

std::string state_tag(const std::string& state_root) {
  uint32_t h = 2166136261u;
  for (unsigned char c : state_root) h = (h ^ c) * 16777619u;
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", h);
  return buf;
}

std::vector<std::string> stale_cgroup_runs(const std::string& tag) {
  std::vector<std::string> bases = {"/sys/fs/cgroup/sandrun"};
  for (const auto& h : dir_entries("/sys/fs/cgroup")) bases.push_back("/sys/fs/cgroup/" + h + "/sandrun");
  std::vector<std::string> out;
  for (const auto& base : bases) {
    for (const auto& run : dir_entries(base)) {
      if (!tag.empty() && (run.size() < tag.size() + 1 || run.compare(run.size() - tag.size(), tag.size(), tag) != 0)) continue;
      struct stat st;
      if (::stat((base + "/" + run).c_str(), &st) == 0 && S_ISDIR(st.st_mode) && !run_alive(run)) {
        out.push_back(base + "/" + run);
      }
    }
  }
  return out;
}

CommandResult try_user_namespace_as(uid_t uid) {
  const std::string id = std::to_string(uid);
  return run_command({"setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups", "--", "unshare", "--user",
                      "--map-root-user", "true"});
}

}  // namespace sandrun::testing

namespace sandrun::testing {
namespace {

// "net:[123]" -> 123; 0 for anything else.
ino_t net_inode(const std::string& link) {
  unsigned long long ino = 0;
  if (std::sscanf(link.c_str(), "net:[%llu]", &ino) != 1) return 0;
  return static_cast<ino_t>(ino);
}

std::string read_link(const std::string& path) {
  char buf[256];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

}  // namespace

std::set<std::string> host_links() {
  std::set<std::string> out;
  struct if_nameindex* all = ::if_nameindex();
  for (auto* i = all; i && i->if_index; ++i) out.insert(std::to_string(i->if_index) + ":" + i->if_name);
  ::if_freenameindex(all);
  return out;
}

std::vector<std::string> net_namespace_holders(ino_t ino) {
  std::vector<std::string> out;
  for (const auto& pid : dir_entries("/proc")) {
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string ns = "/proc/" + pid + "/ns/net";
    if (net_inode(read_link(ns)) == ino) out.push_back(ns);
    for (const auto& fd : dir_entries("/proc/" + pid + "/fd")) {
      const std::string path = "/proc/" + pid + "/fd/" + fd;
      if (net_inode(read_link(path)) == ino) out.push_back(path);
    }
  }
  return out;
}

std::vector<ino_t> net_namespaces_held_by(pid_t pid) {
  std::vector<ino_t> out;
  const std::string dir = "/proc/" + std::to_string(pid);
  const ino_t own = net_inode(read_link(dir + "/ns/net"));
  for (const auto& fd : dir_entries(dir + "/fd")) {
    const ino_t ino = net_inode(read_link(dir + "/fd/" + fd));
    if (ino && ino != own) out.push_back(ino);
  }
  return out;
}

}  // namespace sandrun::testing
