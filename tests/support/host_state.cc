// What the host looks like after a run: processes, mounts (for "nothing is left behind").
#include "tests/support/host_state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>

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

}  // namespace sandrun::testing
