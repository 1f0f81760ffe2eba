// Container slots: the on-disk state of running containers, reused from one container to the
// next. <root>/slots/<k>/ holds a lock (flock, held by the sandrun using the slot), a pid record
// (PID 1 and its start time) and the overlay's upper and work dirs. Reusing them instead of
// creating and deleting directories per container saves the inode churn that dominated a
// container's cost on disk (docs/architecture.md). All containers mount their root on one
// shared directory, <root>/mnt: each in its own mount namespace, never on the host.
// With the disk limit enforced (ContainerPlan::disk), the writable dirs live in <k>/disk, the
// mount point of the slot's own file system (<k>/disk.img, sandbox/disk_image.h): made at the
// slot's first container in this process, kept while the next containers ask for the same size,
// unmounted and removed when the pool goes (and by a sweep after a crash).
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/container_plan.h"
#include "sandbox/disk_image.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

struct Slot {
  std::string dir;    // <root>/slots/<k>
  std::string disk_dir;    // <dir>/disk: holds the dirs below (the slot's file system's mount point)
  std::string disk_image;  // <dir>/disk.img
  std::string disk_templates;  // <root>/disk-templates: the file systems' templates (disk_image.h)
  // The size of the file system mounted on disk_dir by this process; none: a plain directory.
  std::optional<sandbox::DiskSize> disk;
  std::string upper;  // overlay upper dir
  std::string work;   // overlay work dir
  // The upper and work dirs of an overlay workspace (workspace mode "overlay"), and
  // <disk_dir>/cow/<i>/{upper,work} of the caches a container gets copy-on-write (caches.h):
  // emptied with the writable layer.
  std::string ws_upper;
  std::string ws_work;
  std::string cow;  // <disk_dir>/cow
  // The slot's own device nodes (sandbox/dev_nodes.h), checked and reset at each start.
  std::string dev;
  UniqueFd lock;      // flock(LOCK_EX) while this process uses the slot
  // The pid record, which also marks a slot in use: "claimed" from just before a container is
  // cloned, then "PID STARTTIME"; reset to "-" only after the writable layer is emptied. So a
  // slot whose record starts with '-' is clean, and a sweep can tell that from one byte. The
  // record has a fixed size and is only ever overwritten: truncating it per container freed
  // and reallocated a disk block each time.
  UniqueFd pid;
};

class SlotPool {
 public:
  explicit SlotPool(std::string state_root);
  ~SlotPool();  // unlocks every slot
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  // Claims `count` clean slots now (blocking file system work, before the loop runs): idle
  // slots of the state dir first (cleaned if a dead run left them dirty), then new ones.
  Result<void> reserve(size_t count);
  // A clean slot of this pool, or nullptr when all are in use (claims one more, blocking, if
  // `grow` is set).
  Slot* acquire(bool grow);
  // Returns a slot emptied by clear() to the pool.
  void release(Slot* slot);
  // A slot that could not be emptied leaves the pool (unlocked, dirty: a later sweep retries).
  void discard(Slot* slot);

  const std::string& mount_point() const { return mount_point_; }

  // Live restore (container_adopt.h). adopt: takes the slot at `dir` (under <root>/slots) of
  // a container an earlier daemon left running, locked and in use, before a sweep could clean
  // it. forget: lets a slot whose container goes on running leave the pool untouched (unlocked,
  // its pid record kept, for the next daemon to adopt or a sweep to end).
  Result<Slot*> adopt(const std::string& dir);
  void forget(Slot* slot);

  // Marks the slot in use, before the container is cloned.
  static Result<void> mark_claimed(Slot& slot);
  // Records the container's PID 1 in the slot, for a sweep after a crash.
  static Result<void> record_pid(Slot& slot, pid_t pid);
  // Empties the slot's writable layer and its pid record. Blocking: runs on the threadpool.
  static Result<void> clear(Slot& slot);
  // Gives a clean slot the file system `limit` asks for (nothing when it is not enforced, or
  // when the slot has one of that size already). Blocking (mke2fs, mount): on the threadpool.
  static Result<void> prepare_disk(Slot& slot, const sandbox::DiskLimit& limit);
  // Unmounts the slot's file system and removes its image (a crashed run's too). True when
  // there was one.
  static Result<bool> remove_disk(Slot& slot);
  // After a container: "disk limit reached (64 MiB)" when its slot's file system is full (no
  // free block or inode left, within 2%), else "".
  static std::string disk_full(const Slot& slot);

 private:
  Result<Slot*> claim();
  std::string root_;
  std::string mount_point_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<Slot*> free_;
};

// Where one start of `plan` goes in `slot`: the root on `mount_point`, the slot's writable
// layer, and its workspace layer for the plan's copy-on-write bind (an overlay workspace).
sandbox::Placement placement_for(const Slot& slot, const std::string& mount_point, const sandbox::ContainerPlan& plan);
// Where the workspace is mounted in the container. A copy-on-write workspace is a bind there
// with Bind::copy_on_write set (placement_for() gives it the slot's workspace layer).
inline constexpr const char* kWorkspaceTarget = "/workspace";

struct SweepReport {
  size_t slots_cleaned = 0;     // dirty slots of dead runs emptied
  size_t slots_removed = 0;     // idle slots deleted (sandrun cleanup)
  size_t processes_killed = 0;
  size_t mounts_removed = 0;
  size_t disks_removed = 0;     // slot file systems (sandbox/disk_image.h) unmounted and removed
  std::vector<std::string> failures;  // what could not be cleaned, and why
};

// Cleans the slots no live sandrun holds: kills their recorded container (verified by start
// time, through a pidfd), unmounts anything beneath them and empties them. With `remove`, idle
// slots are deleted as well. Slots of live runs are never touched.
SweepReport sweep_slots(const std::string& state_root, bool remove);

}  // namespace sandrun::runner
