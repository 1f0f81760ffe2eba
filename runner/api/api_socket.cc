// The API socket's file: directory, mode, group, stale and live sockets.
#include "runner/api/api_socket.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner::api {
namespace {

std::string parent_dir(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return Error::msg("--socket {}: longer than {} bytes, the limit of a Unix socket's path", path,
                      sizeof addr.sun_path - 1);
  path.copy(addr.sun_path, path.size());
  return addr;
}

// The socket's directory: created with `mode` when missing; set to it when sandrun owns it.
Result<void> prepare_dir(const std::string& dir, std::optional<gid_t> group, bool own_dir) {
  const mode_t mode = group ? 0710 : 0700;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) < 0) {
    if (errno != ENOENT) return Error::sys("socket directory {}", dir);
    SANDRUN_TRY(fs::mkdirs(parent_dir(dir), 0755));
    if (::mkdir(dir.c_str(), mode) < 0 && errno != EEXIST) return Error::sys("create socket directory {}", dir);
    own_dir = true;
  } else if (!S_ISDIR(st.st_mode)) {
    return Error::msg("socket directory {}: not a directory", dir);
  } else if (own_dir && st.st_uid != ::geteuid()) {
    return Error::msg("socket directory {}: owned by uid {}, not by this user", dir, st.st_uid)
        .hint("remove it, or give another --socket");
  }
  if (!own_dir) return {};
  if (::chmod(dir.c_str(), mode) < 0) return Error::sys("chmod {:o} {}", mode, dir);
  if (::chown(dir.c_str(), static_cast<uid_t>(-1), group ? *group : ::getegid()) < 0)
    return Error::sys("chown {} to group {}", dir, group ? *group : ::getegid());
  return {};
}

// Something is at `path`: a daemon that answers (refused), a stale socket (removed), or a file
// that is not a socket (refused: it is not ours to remove).
Result<void> clear_old_socket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) < 0) {
    if (errno == ENOENT) return {};
    return Error::sys("--socket {}", path);
  }
  if (!S_ISSOCK(st.st_mode)) return Error::msg("--socket {}: exists and is not a socket", path);
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) return Error::sys("socket(AF_UNIX)");
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
    return Error::msg("another daemon answers on {}", path)
        .hint("stop it first, or give this one another --socket");
  if (errno != ECONNREFUSED) return Error::sys("connect to the existing socket {}", path);
  if (::unlink(path.c_str()) < 0 && errno != ENOENT) return Error::sys("remove the stale socket {}", path);
  log::info("removed the stale socket {} (nobody answered on it)", path);
  return {};
}

// After bind: nobody can connect before listen(), so the mode and group are right before
// anyone may.
Result<void> finish_socket(ApiSocket& s, std::optional<gid_t> group) {
  const std::string& path = s.path;
  const mode_t mode = group ? 0660 : 0600;
  if (::chmod(path.c_str(), mode) < 0) return Error::sys("chmod {:o} {}", mode, path);
  if (group && ::chown(path.c_str(), static_cast<uid_t>(-1), *group) < 0)
    return Error::sys("chown {} to group {}", path, *group);
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0) return Error::sys("stat {}", path);
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  if (::listen(s.fd.get(), 128) < 0) return Error::sys("listen on {}", path);
  return {};
}

}  // namespace

Result<std::string> default_socket_path() {
  if (::geteuid() == 0) return std::string("/run/sandrun/sandrun.sock");
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (!xdg || *xdg != '/')
    return Error::msg("no default socket for a rootless daemon: XDG_RUNTIME_DIR is not set")
        .hint("give --socket PATH");
  return fs::join(xdg, "sandrun/sandrun.sock");
}

Result<gid_t> lookup_group(const std::string& name) {
  std::vector<char> buf(16384);
  struct group g {};
  struct group* found = nullptr;
  int rc = ::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found);
  if (rc != 0) return Error::sys_code(rc, "--group {}", name);
  if (!found)
    return Error::msg("--group {}: no such group", name).hint("create it first (groupadd); sandrun never edits /etc/group");
  return found->gr_gid;
}

Result<ApiSocket> open_api_socket(const std::string& path, std::optional<gid_t> group, bool own_dir) {
  const sockaddr_un addr = SANDRUN_TRY(unix_address(path));
  const std::string dir = parent_dir(path);
  SANDRUN_TRY(prepare_dir(dir, group, own_dir));
  // Two daemons starting at once on one directory take turns: neither removes the other's
  // fresh socket as stale.
  UniqueFd dir_lock = SANDRUN_TRY(fs::open_path(dir, O_RDONLY | O_DIRECTORY));
  if (::flock(dir_lock.get(), LOCK_EX) < 0) return Error::sys("lock {}", dir);
  SANDRUN_TRY(clear_old_socket(path, addr));
  ApiSocket s;
  s.path = path;
  s.fd = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s.fd) return Error::sys("socket(AF_UNIX)");
  if (::bind(s.fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0)
    return Error::sys("bind {}", path);
  auto bound = finish_socket(s, group);
  if (!bound) {
    ::unlink(path.c_str());
    return std::move(bound.error());
  }
  return s;
}

void remove_api_socket(const ApiSocket& s) {
  struct stat st {};
  if (::lstat(s.path.c_str(), &st) == 0 && st.st_dev == s.dev && st.st_ino == s.ino) ::unlink(s.path.c_str());
}

}  // namespace sandrun::runner::api
