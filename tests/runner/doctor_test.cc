// `sandrun doctor`: the report on this host, its JSON form and its exit status.
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tests/runner/cli_fixture.h"
#include "tests/runner/doctor_lines.h"

namespace sandrun::testing {
namespace {

class DoctorTest : public CliTest {};

bool host_is_cgroup2() {
  struct statfs st;
  return ::statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
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
  EXPECT_EQ(line_of(r.out, "userns.overlay").status, "ok") << r.out;
  EXPECT_EQ(dir_entries(tmp), std::vector<std::string>{});
}

TEST_F(DoctorTest, ShowsTheCgroupVersionAndEachController) {
  auto r = sandrun({"doctor"});
  const bool v2 = host_is_cgroup2();
  auto cg = line_of(r.out, "cgroup");
  EXPECT_EQ(cg.status, "ok") << r.out;
  EXPECT_EQ(cg.detail.rfind(v2 ? "v2 at /sys/fs/cgroup, sandrun's cgroups under /sys/fs/cgroup/sandrun"
                               : "v1 at /sys/fs/cgroup, sandrun's cgroups under /sys/fs/cgroup/",
                            0),
            0u)
      << r.out;
  for (const char* c : {"memory", "cpu", "pids", "cpuset"}) {
    auto l = line_of(r.out, std::string("cgroup.") + c);
    EXPECT_EQ(l.status, "ok") << c << "\n" << r.out;
    EXPECT_EQ(l.detail.rfind("usable: ", 0), 0u) << c << "\n" << r.out;
  }
  EXPECT_EQ(line_of(r.out, "cgroup.cpuacct").status, "ok") << r.out;
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
      "cgroup.pids", "cgroup.cpuset", "namespaces", "userns", "userns.overlay", "idmapped_mounts",
      "subids",  "seccomp", "pidfd",          "clone3",        "clone_into_cgroup", "openat2",
      "mount_api", "overlayfs", "rlimit_nofile", "state_dir", "private_network"};
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
  EXPECT_NE(r.out.find("\nsandrun cannot run here as this user: missing state_dir"), std::string::npos) << r.out;
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
