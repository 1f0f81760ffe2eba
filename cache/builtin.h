// The built-in image `busybox`, made on first use from the host's busybox-static: no network.
#pragma once

#include <string>
#include <vector>

#include "cache/store.h"

namespace sandrun::cache {

// Where the host's busybox is looked for, in order.
inline const std::vector<std::string> kHostBusyboxPaths = {"/usr/bin/busybox", "/bin/busybox"};

// The first statically linked busybox among `candidates`. Missing or dynamically linked
// (Debian's `busybox` package) is an error that says `apt-get install busybox-static`.
Result<std::string> find_host_busybox(const std::vector<std::string>& candidates);

// Ok when `fd` is a 64-bit ELF executable without a program interpreter (static or
// static-pie): it must run in a rootfs that has no libc.
Result<void> check_static_elf(int fd, const std::string& path);

// The applet paths `busybox --list-full` prints ("bin/sh", "usr/bin/awk"), normalised,
// sorted, without bin/busybox itself.
Result<std::vector<std::string>> busybox_applets(const std::string& busybox);

// Writes the rootfs tar of the built-in image to `out_fd`: sorted entries, uid/gid 0,
// mtime 0, so the same busybox binary gives the same bytes (and digests) every time.
Result<void> write_busybox_rootfs(const std::string& busybox, int out_fd);

// Builds the rootfs from the host busybox and imports it as busybox:latest. The caller
// serialises concurrent first uses (Store::ensure holds builtin.lock).
Result<ImageRecord> create_builtin_busybox(Store& store);

}  // namespace sandrun::cache
