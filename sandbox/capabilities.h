// Capability sets: names, Docker's default set, and --cap-add/--cap-drop resolution.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sys/result.h"

namespace sandrun::sandbox {

using CapSet = uint64_t;  // bit N = capability N

// Docker's 14 (moby, containerd and podman agree): CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW
// SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE.
CapSet default_capabilities();

// "CAP_SYS_ADMIN", "sys_admin" or "SYS_ADMIN" (case-insensitive) -> its number. A name this
// build does not know fails with `unknown capability "FOO"`, plus ` (did you mean CAP_X?)`
// when one known name is close.
Result<int> parse_capability(std::string_view name);

// The capabilities of a container, with Docker's rules (moby caps.TweakCapabilities):
//   add contains "ALL"  -> every capability except those in drop;
//   drop contains "ALL" -> exactly the ones in add;
//   otherwise           -> default_capabilities() - drop + add (add wins when both name one).
// "ALL" means every capability up to last_capability() that bounding_set() holds: sandrun run
// in a container may lack some, and asking the kernel for one fails the container's start
// with EPERM. Errors name the bad entry and its list:
//   cap_drop: unknown capability "SYS_ADMN" (did you mean CAP_SYS_ADMIN?)
Result<CapSet> resolve_capabilities(const std::vector<std::string>& add,
                                    const std::vector<std::string>& drop);

// "CAP_CHOWN", ... in number order; a number without a known name renders as "CAP_41".
std::vector<std::string> capability_names(CapSet set);

// The capabilities this process could grant a child: its bounding set (read once). A capability
// outside it can be held by no container sandrun starts, with or without a user namespace.
CapSet bounding_set();

// The highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap, read once);
// CAP_LAST_CAP of the build headers when /proc is not readable.
int last_capability();

}  // namespace sandrun::sandbox
