// The OCI image config JSON (image-spec config.md) of the images this store creates.
#include "cache/oci_config.h"

#include <nlohmann/json.hpp>

namespace sandrun::cache {

namespace {

constexpr const char* host_architecture() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#else
  return "amd64";
#endif
}

}  // namespace

ImageConfig rootfs_image_config() {
  ImageConfig c;
  c.env = {kDefaultPath};
  c.cmd = {"/bin/sh"};
  return c;
}

std::string make_image_config(const std::vector<std::string>& diff_ids, const ImageConfig& config) {
  nlohmann::json run = nlohmann::json::object();
  if (!config.env.empty()) run["Env"] = config.env;
  if (!config.cmd.empty()) run["Cmd"] = config.cmd;
  if (!config.entrypoint.empty()) run["Entrypoint"] = config.entrypoint;
  if (!config.working_dir.empty()) run["WorkingDir"] = config.working_dir;
  if (!config.user.empty()) run["User"] = config.user;
  nlohmann::json doc = {
      {"architecture", host_architecture()},
      {"os", "linux"},
      {"config", run},
      {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
  };
  // nlohmann's object keeps keys sorted: the text is canonical for a given input.
  return doc.dump();
}

}  // namespace sandrun::cache
