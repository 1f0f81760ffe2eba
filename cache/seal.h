// A layer's seal: a digest of what stat() says about every entry of an unpacked layer, written
// when it is extracted and checked when a container uses it, so that a damaged cache (a
// crash, a full disk, a hand edit) is refused instead of run.
//
// What it covers, per entry: the path, the type and mode, the owner, the size and the mtime
// (not of directories, whose size and time depend on the file system's history, nor of
// whiteouts, made when the layer was unpacked). What it cannot see: file contents, so a
// same-size edit whose mtime was put back; xattrs; damage below the file system (bit rot); an
// edit below the layer's top level made less than a minute after a whole walk of it.
// `sandrun image verify` compares every byte against the blob.
#pragma once

#include <string>
#include <string_view>

#include "cache/layout.h"
#include "sandbox/sys/result.h"

namespace sandrun::cache {

// The seal of the layer directory `layer_fd`, two lines: "sandrun-layer-seal 1 <entries>
// sha256:<hex>" over every entry, "top <entries> sha256:<hex>" over the root's own entries.
Result<std::string> seal_of(int layer_fd);

// Writes the seal of `layer_fd` as the file `name` in the directory `dir_fd` (synced by the
// caller's syncfs).
Result<void> write_seal(int dir_fd, const std::string& name, int layer_fd);

// Checks the layer `diff_id` of the store, whose directory is open as `layer_fd`, against its
// seal, once per process and layer (a result is kept, keyed by the layer directory's inode):
// repeated starts pay nothing. The root's own entries are compared every time (a few stats);
// the whole layer when no process walked it in the last minute (the seal file's mtime says
// when one did; a fresh seal has mtime 0, so the first use after unpacking walks it). A layer
// without a seal (unpacked by an older sandrun) is sealed now. An error says the layer was
// changed and how to repair it.
Result<void> check_seal(const Layout& layout, std::string_view diff_id, int layer_fd);

// check_seal without the per-process memory: what each process pays for each layer the first
// time it uses it (the microbenchmark measures this).
Result<void> check_seal_now(const Layout& layout, std::string_view diff_id, int layer_fd);

// Seals the layer `diff_id` of the store again (after `image verify` found it intact), as
// <root>/seals/<hex>. drop_layer() removes a seal with its layer.
Result<void> reseal(const Layout& layout, std::string_view diff_id);

}  // namespace sandrun::cache
