// The OCI image config JSON (image-spec config.md) of the images this store creates.
#pragma once

#include <string>
#include <vector>

#include "cache/store.h"

namespace sandrun::cache {

// The PATH an image gets when it says nothing (docker's default).
inline constexpr const char* kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The run config of an imported rootfs: the default PATH and /bin/sh.
ImageConfig rootfs_image_config();

// The config JSON: architecture, os, config (Env, Cmd, ...), rootfs.diff_ids. No "created"
// field, so the same layers give the same bytes and so the same image id every time.
std::string make_image_config(const std::vector<std::string>& diff_ids, const ImageConfig& config);

}  // namespace sandrun::cache
