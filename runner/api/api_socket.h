// The API's Unix socket on the file system: where it goes, its mode and group, a daemon
// already answering on it, a stale one left by a killed daemon.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner::api {

// /run/sandrun/sandrun.sock as root, else $XDG_RUNTIME_DIR/sandrun/sandrun.sock (an error
// with a hint when that variable is unset).
Result<std::string> default_socket_path();

// The group of --group, which must exist (sandrun never edits /etc/group).
Result<gid_t> lookup_group(const std::string& name);

struct ApiSocket {
  UniqueFd fd;  // bound and listening, non-blocking, CLOEXEC
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
};

// Binds and listens on `path`: mode 0600, or 0660 with group `group`. Its directory is created
// when missing with mode 0700 (0710 and the group: its members may reach the socket, not list
// the directory); `own_dir` (sandrun's default directory) sets that mode on an existing one
// too. Refuses when something answers on `path` or when it is not a socket; a socket nobody
// answers on (a killed daemon's) is removed. Blocking: called before the loop runs.
Result<ApiSocket> open_api_socket(const std::string& path, std::optional<gid_t> group, bool own_dir);

// Removes the socket file if it is still this one (another daemon may have replaced it).
void remove_api_socket(const ApiSocket& s);

}  // namespace sandrun::runner::api
