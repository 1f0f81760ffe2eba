// Spawning a helper program (a network stack, or its --version) without a shell: a clean
// environment, default signal handling, and no fd of ours but the ones named.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sandbox/sys/process.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner {

// Runs `path` with `args` (args[0] is the program name) through sys::spawn. Its stdin is
// /dev/null, stdout and stderr go to `out_fd`, and each {ours, theirs} of `keep` becomes its fd
// `theirs` (>= 3); every other fd is closed in the child, whatever its CLOEXEC flag. The child
// is in its own process group (a terminal's ^C reaches the runner, which decides), and the
// Child kills that group with it (what it forked: slirp4netns's helper that opens the tap
// device).
Result<sys::Child> spawn_helper(const std::string& path, const std::vector<std::string>& args, int out_fd,
                                const std::vector<std::pair<int, int>>& keep = {});

}  // namespace sandrun::runner
