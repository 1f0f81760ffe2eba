// Finding pasta or slirp4netns and what version is installed (for start() and `sandrun doctor`).
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include "runner/net/outbound.h"
#include "runner/net/outbound_spawn.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/lines.h"

namespace sandrun::runner {
namespace {

constexpr const char* kSystemDirs = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string search(const std::string& name, std::string_view dirs) {
  while (!dirs.empty()) {
    const size_t colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    // A relative entry would depend on the runner's working directory: never used.
    if (dir.empty() || dir[0] != '/') continue;
    std::string candidate = std::string(dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// What `argv` prints on stdout and stderr (both into one memfd), when it exits with 0.
std::string output_of(const std::string& path, const std::vector<std::string>& args) {
  UniqueFd out(::memfd_create("sandrun-version", MFD_CLOEXEC));
  if (!out) return {};
  auto child = spawn_helper(path, args, out.get());
  if (!child) return {};
  auto status = child->wait();
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) return {};
  ::lseek(out.get(), 0, SEEK_SET);
  auto text = fs::read_fd(out.get());
  return text ? *text : std::string();
}

// The first line that is not pasta's complaint about a missing syslog socket.
std::string first_line(const std::string& text) {
  std::string found;
  sys::for_each_line(text, [&](std::string_view line) {
    if (line.empty() || line.starts_with("Failed to send")) return true;
    found = line;
    return false;
  });
  return found;
}

}  // namespace

const char* outbound_kind_name(OutboundKind kind) {
  return kind == OutboundKind::pasta ? "pasta" : "slirp4netns";
}

std::string find_executable(const std::string& name, const char* search_path) {
  std::string found = search(name, search_path ? search_path : "");
  return found.empty() ? search(name, kSystemDirs) : found;
}

std::optional<OutboundStack> find_outbound_stack(OutboundKind kind) {
  std::string path = find_executable(outbound_kind_name(kind), std::getenv("PATH"));
  if (path.empty()) return std::nullopt;
  return OutboundStack{kind, std::move(path), "unknown"};
}

std::optional<OutboundStack> find_outbound_stack() {
  if (auto pasta = find_outbound_stack(OutboundKind::pasta)) return pasta;
  return find_outbound_stack(OutboundKind::slirp4netns);
}

void fill_outbound_version(OutboundStack& stack) {
  // "slirp4netns version 1.2.0"; "pasta 2023_03_09.7c7625d", or "pasta unknown version" as
  // Debian 12 builds it, where the package version is the useful answer.
  std::string line = first_line(output_of(stack.path, {stack.path, "--version"}));
  const std::string name = outbound_kind_name(stack.kind);
  for (const std::string& prefix : {name + " version ", name + " "}) {
    if (line.rfind(prefix, 0) == 0) {
      line = line.substr(prefix.size());
      break;
    }
  }
  if (!line.empty() && line.find("unknown") == std::string::npos) {
    stack.version = line;
    return;
  }
  const std::string dpkg = find_executable("dpkg-query", nullptr);
  const char* package = stack.kind == OutboundKind::pasta ? "passt" : "slirp4netns";
  std::string deb = dpkg.empty() ? "" : first_line(output_of(dpkg, {dpkg, "-W", "-f=${Version}\\n", package}));
  stack.version = deb.empty() ? "unknown" : deb + " (Debian package " + package + ")";
}

}  // namespace sandrun::runner
