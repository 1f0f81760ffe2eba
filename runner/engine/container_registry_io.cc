// ContainerRegistry's stdin and terminal of a container, and the files copied into it
// (docker cp): the part of the registry that attach, resize and the archive routes call.
#include <algorithm>

#include "runner/engine/container_files.h"
#include "runner/engine/container_registry.h"
#include "runner/engine/container_registry_entry.h"
#include "sandbox/userns.h"
#include "sandbox/sys/fs.h"

namespace sandrun::runner {

// --- its stdin and terminal -------------------------------------------------------------

bool ContainerRegistry::write_stdin(const std::string& id, std::string_view data) {
  Entry* e = entry(id);
  if (!e || !e->rec.open_stdin) return true;  // no stdin: dropped, as /dev/null would
  if (e->live && !e->tearing_down) return e->live->write_stdin(data);
  if (e->stdin_pending_end) return true;
  e->stdin_pending.append(data);
  return e->stdin_pending.size() <= Input::kHigh;
}

void ContainerRegistry::close_stdin(const std::string& id) {
  Entry* e = entry(id);
  if (!e || !e->rec.open_stdin) return;
  if (e->live && !e->tearing_down) return e->live->close_stdin();
  e->stdin_pending_end = true;
}

uint64_t ContainerRegistry::watch_stdin(const std::string& id, std::function<void()> drained) {
  Entry* e = entry(id);
  if (!e) return 0;
  const uint64_t token = next_token_++;
  e->stdin_waiters.emplace(token, std::move(drained));
  return token;
}

void ContainerRegistry::unwatch_stdin(const std::string& id, uint64_t token) {
  if (Entry* e = entry(id)) e->stdin_waiters.erase(token);
}

// What was written before the start goes first (the Container queues it until its stdin is
// there); the writers that waited for room go on.
void ContainerRegistry::give_pending_stdin(Entry& e) {
  const bool had = !e.stdin_pending.empty();
  const bool room = e.stdin_pending.empty() || e.live->write_stdin(e.stdin_pending);
  e.stdin_pending.clear();
  if (e.stdin_pending_end) e.live->close_stdin();
  e.stdin_pending_end = false;
  if (had && room) stdin_drained(e);
}

void ContainerRegistry::stdin_drained(Entry& e) {
  auto waiters = e.stdin_waiters;  // a waiter may unwatch meanwhile
  for (auto& [token, f] : waiters) {
    if (e.stdin_waiters.count(token) && f) f();
  }
}

std::optional<ContainerRefusal> ContainerRegistry::resize(const std::string& id, sandbox::TtySize size) {
  Entry* e = entry(id);
  if (!e) return no_such(id);
  if (!e->live || e->tearing_down || e->rec.status != ContainerStatus::running)
    return refuse(ContainerRefusal::Kind::conflict, fmt::format("Container {} is not running", id));
  if (!e->rec.tty) return std::nullopt;
  e->tty_size = size;
  if (auto r = e->live->resize(size); !r) return refuse(ContainerRefusal::Kind::failed, r.error().message());
  return std::nullopt;
}

std::string ContainerRegistry::new_archive_path(const std::string& id) {
  return fs::join(dir_of(id), fmt::format("archive-{}.tar", next_token_++));
}

std::optional<ContainerRefusal> ContainerRegistry::add_archive(const std::string& id, std::string file, std::string dir,
                                                               bool copy_owners) {
  Entry* e = entry(id);
  if (!e) return no_such(id);
  if (e->running() || e->rec.status == ContainerStatus::removing)
    return refuse(ContainerRefusal::Kind::conflict, fmt::format("container {} is starting or being removed", e->rec.name));
  e->archives.push_back(Entry::Archive{std::move(file), std::move(dir), copy_owners});
  return std::nullopt;
}

// Extracts the archives copied in, in their order, into the fresh writable layer (on the
// threadpool, before the command runs), each `dir` resolved in that layer over the image's.
std::function<Result<void>(const sandbox::ContainerPlan&, const sandbox::Placement&)> ContainerRegistry::archives_applier(
    Entry& e) {
  const uint64_t cap = store_.limits().max_image_bytes;
  return [archives = e.archives, cap](const sandbox::ContainerPlan& plan, const sandbox::Placement& place) -> Result<void> {
    if (!plan.mount_point_layer.empty())
      return Error::msg("files were copied into the container, but its root file system is read-only");
    LayerTarget t;
    t.upper = place.upper_dir;
    t.lowers = plan.lower_dirs;
    if (plan.userns.enabled) {
      t.ids.uid_base = sandbox::userns::to_host(plan.userns.uid_map, 0).value_or(0);
      t.ids.gid_base = sandbox::userns::to_host(plan.userns.gid_map, 0).value_or(0);
      for (const auto& m : plan.userns.uid_map) t.ids.id_count = std::max(t.ids.id_count, m.inside + m.count);
      t.shift_layer_ids = plan.userns.idmap_layers;
    }
    for (const auto& a : archives) {
      auto tar = SANDRUN_TRY(fs::open_path(a.file, O_RDONLY));
      SANDRUN_TRY(extract_into_layer(t, a.dir, tar.get(), ExtractInto{.max_bytes = cap, .copy_owners = a.copy_owners})
                      .wrap(fmt::format("copy files into {}", a.dir)));
    }
    return {};
  };
}

std::optional<ContainerRefusal> ContainerRegistry::files(const std::string& id, ContainerFiles& out) {
  Entry* e = entry(id);
  if (!e) return no_such(id);
  if (!e->live || e->tearing_down || e->rec.status != ContainerStatus::running || e->live->pid() <= 0) {
    return refuse(ContainerRefusal::Kind::conflict,
                  fmt::format("container {} is not running: sandrun keeps no writable layer of a container that "
                              "does not run, so its files can be copied only while it runs",
                              e->rec.name));
  }
  auto root = open_container_root(e->live->pid(), e->live->pidfd());
  if (!root) return refuse(ContainerRefusal::Kind::failed, root.error().message());
  out.root = std::move(*root);
  const auto& userns = e->live->plan().userns;
  if (userns.enabled) {
    out.uid_base = sandbox::userns::to_host(userns.uid_map, 0).value_or(0);
    out.gid_base = sandbox::userns::to_host(userns.gid_map, 0).value_or(0);
    out.id_count = 0;
    for (const auto& m : userns.uid_map) out.id_count = std::max(out.id_count, m.inside + m.count);
  }
  return std::nullopt;
}

}  // namespace sandrun::runner
