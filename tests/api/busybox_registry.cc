// The registry of the client tests, with busybox images pushed to it.
#include "tests/api/busybox_registry.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cache/builtin.h"
#include "cache/manifest.h"
#include "tests/cache/tar_builder.h"
#include "tests/support/oci_layout.h"
#include "tests/support/registry_server.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;

json descriptor(const OciDescriptor& d) {
  return {{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
}

// An image of `layers` with its own `config` (OciLayout::add_image's runs /bin/sh).
OciDescriptor add_image(OciLayout& layout, const std::vector<OciLayer>& layers, const json& config) {
  json diff_ids = json::array(), list = json::array();
  for (const OciLayer& l : layers) {
    diff_ids.push_back(l.diff_id);
    list.push_back(descriptor(layout.add_blob(l.bytes, l.media_type)));
  }
  json image{{"architecture", "amd64"}, {"os", "linux"}, {"config", config},
             {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  OciDescriptor cfg = layout.add_blob(image.dump(), std::string(cache::media::kOciConfig));
  json manifest{{"schemaVersion", 2}, {"mediaType", cache::media::kOciManifest}, {"config", descriptor(cfg)},
                {"layers", list}};
  return layout.add_blob(manifest.dump(), std::string(cache::media::kOciManifest));
}

// The built-in image's rootfs as a tar, or the error.
std::string busybox_rootfs(std::string* error) {
  auto busybox = cache::find_host_busybox(cache::kHostBusyboxPaths);
  if (!busybox) {
    *error = busybox.error().render();
    return "";
  }
  TempDir work;
  const std::string tar = work / "rootfs.tar";
  int fd = ::open(tar.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = "cannot create " + tar;
    return "";
  }
  auto written = cache::write_busybox_rootfs(*busybox, fd);
  ::close(fd);
  if (!written) *error = written.error().render();
  return written ? read_file(tar) : "";
}

}  // namespace

bool BusyboxRegistry::available(std::string* why) { return RegistryServer::available(why); }

BusyboxRegistry::BusyboxRegistry() = default;
BusyboxRegistry::~BusyboxRegistry() = default;

std::string BusyboxRegistry::reference(const std::string& name) const {
  return server_->host() + "/ci/" + name + ":1";
}

std::string BusyboxRegistry::start() {
  std::string err;
  const std::string rootfs = busybox_rootfs(&err);
  if (rootfs.empty()) return err;
  TempDir dir;
  OciLayout layout(dir.path());
  const OciLayer base = make_layer(rootfs, "gzip");
  const json path_env = json::array({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"});
  layout.tag(add_image(layout, {base, make_layer(TarBuilder().dir("etc").file("etc/pulled", "from the registry\n").build(), "gzip")},
                       {{"Env", path_env}, {"Cmd", json::array({"sh"})}}),
             "busybox");
  layout.tag(add_image(layout, {base, make_layer(TarBuilder().dir("www").file("www/index.html", "served by ci/web\n").build(), "gzip")},
                       {{"Env", path_env}, {"Cmd", json::array({"httpd", "-f", "-p", "80", "-h", "/www"})},
                        {"ExposedPorts", {{"80/tcp", json::object()}}}}),
             "web");
  server_ = RegistryServer::start({}, &err);
  if (!server_) return err;
  for (const std::string name : {"busybox", "web"}) {
    std::string pushed = server_->push(dir.path(), name, "ci/" + name + ":1");
    if (!pushed.empty()) return pushed;
  }
  return "";
}

}  // namespace sandrun::testing
