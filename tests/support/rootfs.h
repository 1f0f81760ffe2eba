// Building small test root file systems from the host's static busybox and the probe.
#pragma once

#include <string>

namespace sandrun::testing {

// Fills `dir` with a minimal busybox root: /bin/busybox, applet links, /usr/bin/probe,
// /etc/passwd and /etc/group. Returns "" on success, else what failed.
std::string make_busybox_rootfs(const std::string& dir);

// The host's static busybox, or "" when it is not installed.
std::string host_busybox();

}  // namespace sandrun::testing
