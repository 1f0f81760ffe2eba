// Cleaning up on the host after a sandrun that died: killing the processes it left (each
// verified to still be the one recorded, through a pidfd) and detaching mounts beneath a
// directory.
#pragma once

#include <sys/types.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace sandrun::sandbox {

// SIGKILLs `pid` if it is still the live process that started at `start_time` (field 22 of
// /proc/PID/stat), and waits up to 5 s for it to die. The pidfd is opened before the start
// time is checked, so a match means the signal goes to that process, never to a later one
// with a reused pid. True when it was killed; false when it is gone, a zombie, or another.
bool kill_recorded_process(pid_t pid, unsigned long long start_time);

// SIGKILLs `pid` if it is alive and its name (/proc/PID/comm) starts with one of `names`.
// The name is read while a pidfd holds the process, and the process is checked to be still
// alive after: so the name was that process's. True when it was killed.
bool kill_process_named(pid_t pid, std::initializer_list<std::string_view> names);

// Detaches (umount2 MNT_DETACH) every mount of our mount namespace at `prefix` or beneath it,
// deepest first. Returns how many went; each failure is appended to `failures` as
// "unmount PATH: REASON".
size_t unmount_beneath(const std::string& prefix, std::vector<std::string>& failures);

}  // namespace sandrun::sandbox
