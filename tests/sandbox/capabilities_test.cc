// Capability names, cap_add/cap_drop resolution, and dropping to a set for real (as root).
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "sandbox/capabilities.h"
#include "sandbox/harden_child.h"
#include "tests/support/test_env.h"

namespace sandrun::sandbox {
namespace {

constexpr CapSet bit(int cap) { return CapSet{1} << cap; }

TEST(CapabilitiesTest, ParsesNamesInAnyCaseWithOrWithoutPrefix) {
  for (const char* name : {"CAP_SYS_ADMIN", "cap_sys_admin", "SYS_ADMIN", "sys_admin", "Cap_Sys_Admin"}) {
    auto cap = parse_capability(name);
    ASSERT_TRUE(cap) << name << ": " << cap.error().message();
    EXPECT_EQ(*cap, CAP_SYS_ADMIN) << name;
  }
  EXPECT_EQ(*parse_capability("chown"), CAP_CHOWN);
  EXPECT_EQ(*parse_capability("CAP_CHECKPOINT_RESTORE"), CAP_CHECKPOINT_RESTORE);
}

TEST(CapabilitiesTest, UnknownNamesSuggestTheClosestOne) {
  EXPECT_EQ(parse_capability("SYS_ADMN").error().message(),
            "unknown capability \"SYS_ADMN\" (did you mean CAP_SYS_ADMIN?)");
  EXPECT_EQ(parse_capability("cap_net_amdin").error().message(),
            "unknown capability \"cap_net_amdin\" (did you mean CAP_NET_ADMIN?)");
  EXPECT_EQ(parse_capability("FOO").error().message(), "unknown capability \"FOO\"");
  EXPECT_EQ(parse_capability("").error().message(), "unknown capability \"\"");
  EXPECT_FALSE(parse_capability("ALL"));  // only the lists know ALL
}

TEST(CapabilitiesTest, DefaultSetIsDockers) {
  EXPECT_EQ(default_capabilities(), 0xa80425fbull);  // CapBnd of a default `docker run`
  const std::vector<std::string> expected = {
      "CAP_CHOWN",  "CAP_DAC_OVERRIDE",     "CAP_FOWNER",  "CAP_FSETID",     "CAP_KILL",
      "CAP_SETGID", "CAP_SETUID",           "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW",
      "CAP_SYS_CHROOT", "CAP_MKNOD",        "CAP_AUDIT_WRITE", "CAP_SETFCAP"};
  EXPECT_EQ(capability_names(default_capabilities()), expected);
  EXPECT_EQ(capability_names(bit(41) | bit(CAP_BPF)), (std::vector<std::string>{"CAP_BPF", "CAP_41"}));
}

TEST(CapabilitiesTest, ResolvesAddAndDropLikeDocker) {
  // ALL is what sandrun itself can grant: up to the kernel's last capability, within its own
  // bounding set (in a container it may lack some).
  const CapSet all = (last_capability() >= 63 ? ~CapSet{0} : bit(last_capability() + 1) - 1) & bounding_set();
  EXPECT_EQ(*resolve_capabilities({}, {}), default_capabilities());
  EXPECT_EQ(*resolve_capabilities({"NET_ADMIN"}, {"net_raw", "CAP_MKNOD"}),
            (default_capabilities() | bit(CAP_NET_ADMIN)) & ~bit(CAP_NET_RAW) & ~bit(CAP_MKNOD));
  EXPECT_EQ(*resolve_capabilities({"CHOWN", "KILL"}, {"ALL"}), bit(CAP_CHOWN) | bit(CAP_KILL));
  EXPECT_EQ(*resolve_capabilities({}, {"all"}), 0u);
  EXPECT_EQ(*resolve_capabilities({"ALL"}, {"SYS_ADMIN"}), all & ~bit(CAP_SYS_ADMIN));
  EXPECT_EQ(*resolve_capabilities({"SYS_PTRACE"}, {"SYS_PTRACE"}), default_capabilities() | bit(CAP_SYS_PTRACE));
  EXPECT_EQ(resolve_capabilities({"NET_ADMN"}, {}).error().message(),
            "cap_add: unknown capability \"NET_ADMN\" (did you mean CAP_NET_ADMIN?)");
  EXPECT_EQ(resolve_capabilities({"ALL"}, {"BOGUS"}).error().message(), "cap_drop: unknown capability \"BOGUS\"");
}

TEST(CapabilitiesTest, BoundingSetIsCapBndOfProcSelfStatus) {
  std::ifstream in("/proc/self/status");
  std::string line;
  CapSet bnd = 0;
  bool found = false;
  while (std::getline(in, line)) {
    if (line.rfind("CapBnd:", 0) == 0) {
      bnd = std::stoull(line.substr(7), nullptr, 16);
      found = true;
    }
  }
  SANDRUN_REQUIRE(found, "/proc/self/status has no CapBnd");
  EXPECT_EQ(bounding_set(), bnd);
  EXPECT_EQ(*resolve_capabilities({"ALL"}, {}) & ~bnd, 0u);
}

TEST(CapabilitiesTest, LastCapabilityMatchesTheKernel) {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int kernel = -1;
  SANDRUN_REQUIRE(static_cast<bool>(in >> kernel), "/proc/sys/kernel/cap_last_cap is not readable");
  EXPECT_EQ(last_capability(), kernel);
}

// /proc/self/status of a child that dropped to Docker's default set, as a root command keeps it.
std::string status_after_drop(CapSet keep, bool no_new_privs) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (const int e = harden::drop_capabilities(keep, last_capability()); e != 0) ::_exit(e);
    if (no_new_privs && harden::set_no_new_privs() != 0) ::_exit(200);
    std::ifstream in("/proc/self/status");
    std::stringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    ::_exit(::write(fds[1], s.data(), s.size()) == static_cast<ssize_t>(s.size()) ? 0 : 201);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "child failed: " + std::to_string(status);
  return out;
}

std::string field(const std::string& status, const std::string& name) {
  std::istringstream in(status);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + ":", 0) == 0) {
      const size_t value = line.find_first_not_of(" \t", name.size() + 1);
      return value == std::string::npos ? "" : line.substr(value);
    }
  }
  return "(missing)";
}

TEST(CapabilitiesTest, DropLeavesExactlyTheDefaultSet) {
  SANDRUN_REQUIRE_ROOT();
  const std::string status = status_after_drop(default_capabilities(), true);
  EXPECT_EQ(field(status, "CapInh"), "0000000000000000") << status;
  EXPECT_EQ(field(status, "CapPrm"), "00000000a80425fb");
  EXPECT_EQ(field(status, "CapEff"), "00000000a80425fb");
  EXPECT_EQ(field(status, "CapBnd"), "00000000a80425fb");
  EXPECT_EQ(field(status, "CapAmb"), "0000000000000000");
  EXPECT_EQ(field(status, "NoNewPrivs"), "1");
}

TEST(CapabilitiesTest, DropToNothing) {
  SANDRUN_REQUIRE_ROOT();
  const std::string status = status_after_drop(0, false);
  for (const char* name : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(field(status, name), "0000000000000000") << name << "\n" << status;
  }
}

}  // namespace
}  // namespace sandrun::sandbox
