// The state of one sandrun run on disk: <root>/run/<id>/ with a lock held while the run
// lives, one directory per container, and the sweep that removes what dead runs left.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

// Paths of one container's private layer, beneath its run directory.
struct ContainerDirs {
  std::string dir;    // <run>/<n>
  std::string upper;  // overlay upper dir
  std::string work;   // overlay work dir
  std::string root;   // mount point of the container's root
};

class RunDir {
 public:
  // Creates <state_root>/run/<id>/ and locks it (the lock dies with this process, which is
  // how a later sweep tells a dead run from a live one).
  static Result<RunDir> create(const std::string& state_root);
  RunDir(RunDir&&) = default;
  RunDir& operator=(RunDir&&) = default;
  ~RunDir();

  const std::string& path() const { return path_; }
  const std::string& id() const { return id_; }

  // Creates the directories of container number `n`.
  Result<ContainerDirs> make_container(size_t n) const;
  // Records the container's PID 1 (pid and start time) so a sweep can kill it if we die.
  Result<void> record_pid(const ContainerDirs& dirs, pid_t pid) const;
  // Removes everything of the run (call after every container is gone).
  Result<void> remove();

 private:
  RunDir() = default;
  std::string path_;
  std::string id_;
  UniqueFd lock_;
  bool removed_ = false;
};

// What a sweep found and removed.
struct SweepReport {
  std::vector<std::string> runs;      // ids of dead runs removed
  size_t processes_killed = 0;
  size_t mounts_removed = 0;
  std::vector<std::string> failures;  // what could not be removed, and why
};

// Removes the run directories under <state_root>/run/ whose owner is dead: kills their
// recorded container processes (verified by start time, through a pidfd), unmounts anything
// mounted beneath them and deletes them. Live runs (lock held) are never touched.
SweepReport sweep_dead_runs(const std::string& state_root);

// The start time of a process (field 22 of /proc/PID/stat), or 0 when it does not exist.
unsigned long long process_start_time(pid_t pid);

}  // namespace sandrun::runner
