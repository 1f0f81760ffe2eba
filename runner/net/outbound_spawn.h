// Spawning a helper program (a network stack, or its --version) without a shell: a clean
// environment, default signal handling, and no fd of ours but the ones named.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

struct SpawnedHelper {
  pid_t pid = -1;
  UniqueFd pidfd;
};

// Runs `path` with `args` (args[0] is the program name). Its stdin is /dev/null, stdout and
// stderr go to `out_fd`, and each {ours, theirs} of `keep` becomes its fd `theirs` (>= 3);
// every other fd is closed in the child, whatever its CLOEXEC flag. The child is in its own
// process group (a terminal's ^C reaches the runner, which decides) and has a pidfd.
Result<SpawnedHelper> spawn_helper(const std::string& path, const std::vector<std::string>& args, int out_fd,
                                   const std::vector<std::pair<int, int>>& keep = {});

// SIGKILLs the child and its process group (what it forked: slirp4netns's helper that opens
// the tap device), then reaps the child. `pid` is the child's, still unreaped, so the group id
// (the same number) cannot name another group.
void kill_and_reap_helper(int pidfd, pid_t pid);

}  // namespace sandrun::runner
