// Shared state of the micro-benchmarks: temp dirs (disk and tmpfs) and the built-in busybox layer.
#pragma once

#include <string>

namespace sandrun::bench {

// A private temp directory ($TMPDIR or /tmp: a disk here), created on first use and removed
// when the program exits.
const std::string& temp_dir();
// The same under /dev/shm (tmpfs), to compare where the per-container directories live;
// empty when /dev/shm is not a writable tmpfs.
const std::string& shm_dir();

// The unpacked layer of the built-in busybox image, made once in a cache under temp_dir()
// (the same layer `sandrun exec` uses). Empty with `*error` set when it cannot be made.
const std::string& busybox_layer(std::string* error);

bool is_root();

}  // namespace sandrun::bench
