// `sandrun doctor`: the report on this host, its JSON form and its exit status. What a host of
// CI's kind may answer either way (unprivileged user namespaces, cgroup v1, hybrid or v2, which
// controllers) is found by the test's own probes, never taken from this host: the report must
// agree with them (docs/testing.md).
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/runner/cli_fixture.h"
#include "tests/runner/doctor_lines.h"
#include "tests/runner/refused_userns.h"

namespace sandrun::testing {
namespace {

class DoctorTest : public CliTest {};

bool host_is_cgroup2() {
  struct statfs st;
  return ::statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
}

// Tried as uid 65534 with util-linux, not with sandrun's probes: may an unprivileged user create
// a user namespace here (user.max_user_namespaces, kernel.unprivileged_userns_clone, AppArmor)?
bool unprivileged_userns_work() { return try_user_namespace_as(65534).status == 0; }

// ... and mount an overlay inside one, on a tmpfs over `dir` (which uid 65534 must reach).
bool unprivileged_overlay_works(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) < 0) return false;
  return run_command({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", "unshare", "--user",
                      "--map-root-user", "--mount", "--", "sh", "-c",
                      "set -e; mount -t tmpfs tmpfs \"$0\"; mkdir \"$0/l\" \"$0/u\" \"$0/w\" \"$0/m\"; "
                      "mount -t overlay overlay -o \"lowerdir=$0/l,upperdir=$0/u,workdir=$0/w\" \"$0/m\"",
                      dir})
             .status == 0;
}

// The cgroup controllers this host offers, from the kernel's own lists: v2, the root's
// cgroup.controllers; v1 (also hybrid), those of /proc/cgroups bound to a v1 hierarchy.
std::vector<std::string> usable_controllers(bool v2) {
  std::vector<std::string> out;
  if (v2) {
    std::istringstream in(read_file("/sys/fs/cgroup/cgroup.controllers"));
    for (std::string c; in >> c;) out.push_back(c);
    return out;
  }
  std::ifstream in("/proc/cgroups");  // "#subsys_name hierarchy num_cgroups enabled"
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string name;
    int hierarchy = 0, count = 0, enabled = 0;
    if (line.empty() || line[0] == '#' || !(f >> name >> hierarchy >> count >> enabled)) continue;
    if (hierarchy != 0 && enabled) out.push_back(name);
  }
  return out;
}

// Mount points of cgroup2 file systems in this mount namespace (a hybrid host has one beside
// its v1 controllers, with or without controllers in it).
std::vector<std::string> cgroup2_mounts() {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    const size_t sep = line.find(" - ");
    if (sep != std::string::npos && line.compare(sep + 3, 8, "cgroup2 ") == 0) out.push_back(point);
  }
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST_F(DoctorTest, AsRootOnThisHostEverythingNeededIsThere) {
  // The probes' temp dirs go to $TMPDIR: a private one shows that none is left behind.
  const std::string tmp = tmp_ / "tmp";
  ASSERT_EQ(::mkdir(tmp.c_str(), 0755), 0);
  ::chmod(tmp_.path().c_str(), 0755);  // the overlay probe runs as uid 65534
  auto r = sandrun({"doctor"}, {"TMPDIR=" + tmp});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "");
  for (const char* name : {"kernel", "root", "namespaces", "seccomp", "pidfd", "clone3", "openat2", "mount_api",
                           "overlayfs", "state_dir"}) {
    EXPECT_EQ(line_of(r.out, name).status, "ok") << name << "\n" << r.out;
  }
  EXPECT_NE(line_of(r.out, "state_dir").detail.find(root()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nsandrun can run here"), std::string::npos) << r.out;
  EXPECT_EQ(dir_entries(tmp), std::vector<std::string>{});

  // Unprivileged user namespaces are a host's choice (sysctls): as root, sandrun needs them
  // only for rootless users, so either answer is "ok" or "limited", never "missing", and the
  // report must give this host's answer.
  const bool userns = unprivileged_userns_work();
  const bool root_userns = run_command({"unshare", "--user", "true"}).status == 0;
  const bool overlay = unprivileged_overlay_works(tmp_ / "overlay-probe");
  auto u = line_of(r.out, "userns");
  EXPECT_EQ(u.status, userns ? "ok" : "limited") << "unprivileged user namespaces work: " << userns << "\n" << r.out;
  EXPECT_EQ(u.detail.rfind(userns        ? "unprivileged users may create user namespaces ("
                           : root_userns ? "root may, unprivileged users may not ("
                                         : "not allowed (",
                           0),
            0u)
      << r.out;
  if (!userns) {
    EXPECT_NE(r.out.find("fix: "), std::string::npos) << r.out;
  }
  auto o = line_of(r.out, "userns.overlay");
  EXPECT_EQ(o.status, overlay ? "ok" : "limited") << "overlay in an unprivileged user namespace works: " << overlay
                                                   << "\n" << r.out;
  EXPECT_NE(o.detail.find("(as uid 65534)"), std::string::npos) << r.out;
}

TEST_F(DoctorTest, ShowsTheCgroupVersionAndEachController) {
  auto r = sandrun({"doctor"});
  const bool v2 = host_is_cgroup2();
  const auto controllers = usable_controllers(v2);
  auto cg = line_of(r.out, "cgroup");
  EXPECT_EQ(cg.status, "ok") << r.out;
  EXPECT_EQ(cg.detail.rfind(v2 ? "v2 at /sys/fs/cgroup, sandrun's cgroups under /sys/fs/cgroup/sandrun"
                               : "v1 at /sys/fs/cgroup, sandrun's cgroups under /sys/fs/cgroup/<controller>/sandrun",
                            0),
            0u)
      << r.out;
  // A hybrid host (v1 controllers and a cgroup2 mount, whatever that mount holds) is v1 to
  // sandrun, which says so.
  for (const auto& point : v2 ? std::vector<std::string>{} : cgroup2_mounts()) {
    EXPECT_NE(cg.detail.find("the cgroup2 mount at " + point + " is ignored: on a hybrid host sandrun uses cgroup v1"),
              std::string::npos)
        << r.out;
  }
  // Each controller is reported usable exactly when the kernel's list has it (a missing pids
  // controller is "missing": every job's default pids limit needs it).
  for (const char* c : {"memory", "cpu", "pids", "cpuset"}) {
    auto l = line_of(r.out, std::string("cgroup.") + c);
    if (contains(controllers, c)) {
      EXPECT_EQ(l.status, "ok") << c << "\n" << r.out;
      EXPECT_EQ(l.detail.rfind("usable: ", 0), 0u) << c << "\n" << r.out;
    } else {
      EXPECT_EQ(l.status, std::string(c) == "pids" ? "missing" : "limited") << c << "\n" << r.out;
      EXPECT_EQ(l.detail.rfind("not usable (", 0), 0u) << c << "\n" << r.out;
    }
  }
  auto cpuacct = line_of(r.out, "cgroup.cpuacct");
  if (v2) {
    EXPECT_EQ(cpuacct.status, "ok") << r.out;
    EXPECT_EQ(cpuacct.detail, "none in cgroup v2: CPU time comes from cpu.stat") << r.out;
  } else {
    EXPECT_EQ(cpuacct.status, contains(controllers, "cpuacct") ? "ok" : "limited") << r.out;
  }
  auto clone = line_of(r.out, "clone_into_cgroup");
  EXPECT_EQ(clone.status, v2 ? "ok" : "limited") << r.out;
  if (!v2) {
    EXPECT_NE(clone.detail.find("needs cgroup v2"), std::string::npos) << r.out;
  }
}

TEST_F(DoctorTest, JsonHasEveryItemWithStatusDetailAndFix) {
  auto r = sandrun({"doctor", "--format", "json"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["missing"], nlohmann::json::array());
  ASSERT_TRUE(j["items"].is_array());
  std::vector<std::string> names;
  for (const auto& item : j["items"]) {
    ASSERT_TRUE(item["name"].is_string());
    names.push_back(item["name"]);
    const std::string status = item["status"];
    EXPECT_TRUE(status == "ok" || status == "limited" || status == "missing") << item.dump();
    EXPECT_FALSE(item["detail"].get<std::string>().empty()) << item.dump();
    EXPECT_TRUE(item["fix"].is_string()) << item.dump();
    if (status != "ok") {
      EXPECT_FALSE(item["fix"].get<std::string>().empty()) << item.dump();
    }
  }
  const std::vector<std::string> expected = {
      "kernel",  "root",    "cgroup",         "cgroup.memory", "cgroup.cpu",      "cgroup.cpuacct",
      "cgroup.pids", "cgroup.cpuset", "cgroup.devices", "namespaces", "userns", "userns.overlay", "idmapped_mounts",
      "subids",  "seccomp", "pidfd",          "clone3",        "clone_into_cgroup", "openat2",
      "mount_api", "overlayfs", "rlimit_nofile", "state_dir", "disk_limit", "private_network", "policy"};
  EXPECT_EQ(names, expected);
}

TEST_F(DoctorTest, WithoutRootItChecksRootlessModeAndNamesWhatIsMissing) {
  // An unprivileged user whose home is not there: no state dir can be made for it.
  auto r = run_command({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=/nonexistent",
                        "XDG_DATA_HOME=", sandrun_bin(), "doctor"});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  auto root = line_of(r.out, "root");
  EXPECT_EQ(root.detail.rfind("running as nobody (uid 65534): rootless mode", 0), 0u) << r.out;
  auto state = line_of(r.out, "state_dir");
  EXPECT_EQ(state.status, "missing") << r.out;
  EXPECT_EQ(state.detail.rfind("/nonexistent/.local/share/sandrun (to be created in /) is not writable: ", 0), 0u)
      << r.out;
  // Rootless mode needs user namespaces: where this host refuses them to uid 65534 (its own
  // probe says), those items are missing too (WhereUserNamespacesAreRefused... checks that
  // answer on every host).
  const std::string missing =
      unprivileged_userns_work() ? "state_dir" : "root, namespaces, userns, userns.overlay, state_dir";
  EXPECT_NE(r.out.find("\nsandrun cannot run here as this user: missing " + missing + "\n"), std::string::npos)
      << r.out;
}

// Whatever this host allows, the answer of a host that refuses user namespaces: rootless mode,
// its namespaces and overlay are missing, each with the fix, and the doctor fails.
TEST_F(DoctorTest, WhereUserNamespacesAreRefusedRootlessModeIsMissingWithTheFix) {
  constexpr uid_t kUser = 4242;  // no passwd entry
  ASSERT_EQ(::chmod(tmp_.path().c_str(), 0711), 0);
  const std::string home = tmp_ / "home";
  ASSERT_EQ(::mkdir(home.c_str(), 0755), 0);
  ASSERT_EQ(::chown(home.c_str(), kUser, kUser), 0);
  auto r = run_where_user_namespaces_are_refused(
      kUser, {sandrun_bin(), "doctor"}, {"HOME=" + home, "PATH=/usr/local/bin:/usr/bin:/bin", "TMPDIR=" + home});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  auto root = line_of(r.out, "root");
  EXPECT_EQ(root.status, "missing") << r.out;
  EXPECT_EQ(root.detail,
            "running as 4242 (uid 4242): rootless mode needs user namespaces, and this user may not create them (see "
            "userns)")
      << r.out;
  EXPECT_EQ(line_of(r.out, "namespaces").status, "missing") << r.out;
  EXPECT_EQ(line_of(r.out, "namespaces").detail, "unshare(CLONE_NEWUSER): No space left on device") << r.out;
  auto u = line_of(r.out, "userns");
  EXPECT_EQ(u.status, "missing") << r.out;
  EXPECT_EQ(u.detail.rfind("not allowed (user.max_user_namespaces=0", 0), 0u) << r.out;
  EXPECT_NE(u.detail.find("): unshare(CLONE_NEWUSER): No space left on device"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fix: user namespaces are disabled: sysctl -w user.max_user_namespaces=15000\n"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(line_of(r.out, "userns.overlay").status, "missing") << r.out;
  EXPECT_EQ(line_of(r.out, "state_dir").status, "ok") << r.out;
  EXPECT_NE(r.out.find("\nsandrun cannot run here as this user: missing root, namespaces, userns, userns.overlay\n"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(dir_entries(home), std::vector<std::string>{});  // the probes left nothing in $TMPDIR
}

TEST_F(DoctorTest, AnUnwritableStateDirIsReportedMissing) {
  // /proc is never a place for state: unwritable, so the doctor fails and names it.
  auto r = run_sandrun("/proc/sandrun", {"doctor"});
  EXPECT_EQ(r.status, 1) << r.out;
  auto l = line_of(r.out, "state_dir");
  EXPECT_EQ(l.status, "missing") << r.out;
  EXPECT_EQ(l.detail.rfind("/proc/sandrun (to be created in /proc) is not writable: create a directory in /proc: ", 0), 0u)
      << r.out;
}

TEST_F(DoctorTest, AnUnknownFormatIsAUsageError) {
  auto r = sandrun({"doctor", "--format", "yaml"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("yaml"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sandrun::testing
