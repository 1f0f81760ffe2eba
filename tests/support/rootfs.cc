// Building small test root file systems from the host's static busybox and the probe.
#include "tests/support/rootfs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "sandbox/sys/fs.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {
namespace {

const char* const kApplets[] = {"sh", "echo", "cat", "ls", "ps", "sleep", "hostname", "mkdir", "touch",
                                "id", "wc", "head", "seq", "true", "false", "kill", "test", "grep",
                                "readlink", "stat", "env", "pwd", "rm", "printf", "ip", "tr", "sha256sum",
                                "yes", "dd", "mount", "find", "sort", "uniq", "tail", "nc", "ln", "chmod"};

bool copy_file(const std::string& from, const std::string& to, mode_t mode) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  if (!in || !out) return false;
  out << in.rdbuf();
  out.close();
  return ::chmod(to.c_str(), mode) == 0;
}

}  // namespace

std::string host_busybox() {
  for (const char* p : {"/usr/bin/busybox", "/bin/busybox"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

std::string make_busybox_rootfs(const std::string& dir) {
  std::string bb = host_busybox();
  if (bb.empty()) return "busybox-static is not installed";
  for (const char* d : {"bin", "usr/bin", "etc", "tmp", "proc", "sys", "dev", "root"}) {
    if (auto r = fs::mkdirs(dir + "/" + d); !r) return r.error().message();
  }
  if (!copy_file(bb, dir + "/bin/busybox", 0755)) return "cannot copy busybox";
  if (!copy_file(probe_bin(), dir + "/usr/bin/probe", 0755)) return "cannot copy the probe";
  for (const char* a : kApplets) {
    std::string link = dir + "/bin/" + a;
    if (::symlink("/bin/busybox", link.c_str()) < 0) return "cannot link " + link;
  }
  write_file(dir + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
  write_file(dir + "/etc/group", "root:x:0:\nnogroup:x:65534:\n");
  ::chmod((dir + "/tmp").c_str(), 01777);
  return "";
}

}  // namespace sandrun::testing
