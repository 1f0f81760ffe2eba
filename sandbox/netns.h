// Network namespaces the runner makes for a job (shared by the job's containers and services)
// and sockets opened inside them (for the port proxy). Root only: setns(CLONE_NEWNET) needs
// CAP_SYS_ADMIN. Safe from any thread: only the calling thread changes namespace, and it is
// back in its own before these return.
#pragma once

#include <string>
#include <string_view>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::sandbox {

// A new network namespace with only `lo`, up. The fd keeps it alive.
Result<UniqueFd> create_netns();
// create_netns() for a daemon container, with net.ipv4.ip_unprivileged_port_start 0 and
// net.ipv4.ping_group_range "0 4294967294" in it (Docker sets both): the container's root is
// root of its user namespace only, which holds no capability over a namespace the daemon made,
// so without them a service could not bind port 80 (busybox httpd: "bind: Permission denied")
// nor open an ICMP datagram socket (its ids are host ids of 2^31 and up: the whole range). Raw
// sockets stay refused (busybox's ping: "permission denied (are you root?)"). The sysctls are
// the namespace's own: the host's and other namespaces' are untouched.
Result<UniqueFd> create_container_netns();
// socket(domain, type | SOCK_CLOEXEC, 0) inside the namespace `netns_fd`.
Result<UniqueFd> socket_in_netns(int netns_fd, int domain, int type);
// Writes `value` to /proc/sys/`key` as the namespace `netns_fd` sees it: a per-namespace
// sysctl such as "net/ipv4/ip_forward" (/proc/sys/net follows the namespace of the thread that
// opens it).
Result<void> write_netns_sysctl(int netns_fd, const std::string& key, std::string_view value);

}  // namespace sandrun::sandbox
