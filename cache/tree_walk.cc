// An iterative walk of a directory tree (see tree_walk.h).
#include "cache/tree_walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::cache {

namespace {

Result<std::vector<std::string>> sorted_names(int dir_fd) {
  int dup = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = dup < 0 ? nullptr : ::fdopendir(dup);
  if (!d) {
    Error e = Error::sys("read directory {}", fs::fd_path(dir_fd));
    if (dup >= 0) ::close(dup);
    return e;
  }
  std::vector<std::string> out;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) out.emplace_back(e->d_name);
    errno = 0;
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return Error::sys_code(err, "read directory {}", fs::fd_path(dir_fd));
  std::sort(out.begin(), out.end());
  return out;
}

// One directory being walked: its names, the next to visit, the length of its path.
struct Level {
  std::vector<std::string> names;
  size_t next = 0;
  size_t path_size = 0;  // of `path` while this level is the top
};

}  // namespace

Result<void> walk_tree(int root_fd, const TreeVisit& visit, size_t max_depth) {
  UniqueFd dir(::openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return Error::sys("open directory {}", fs::fd_path(root_fd));
  std::vector<Level> stack;
  std::string path;  // of the directory at the top, "" for the root
  stack.push_back(Level{SANDRUN_TRY(sorted_names(dir.get())), 0, 0});
  while (!stack.empty()) {
    Level& top = stack.back();
    if (top.next == top.names.size()) {
      stack.pop_back();
      if (stack.empty()) break;
      path.resize(stack.back().path_size);
      dir = UniqueFd(::openat(dir.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!dir) return Error::sys("open the parent of {}", fs::fd_path(root_fd));
      continue;
    }
    const std::string& name = top.names[top.next++];
    const std::string entry = path.empty() ? name : path + "/" + name;
    struct stat st;
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT) continue;  // gone meanwhile
      return Error::sys("stat {}", fs::join(fs::fd_path(dir.get()), name));
    }
    SANDRUN_TRY(visit(entry, dir.get(), name.c_str(), st));
    if (!S_ISDIR(st.st_mode) || stack.size() >= max_depth) continue;
    UniqueFd child(::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!child) return Error::sys("open directory {}", fs::join(fs::fd_path(dir.get()), name));
    std::vector<std::string> names = SANDRUN_TRY(sorted_names(child.get()));
    dir = std::move(child);
    path = entry;
    stack.push_back(Level{std::move(names), 0, path.size()});
  }
  return {};
}

}  // namespace sandrun::cache
