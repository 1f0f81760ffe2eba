// What a job leaves in the host directories it is given, in the default user namespace: files
// in a user's checkout belong to that user, nothing it makes belongs to host root, and a
// setuid binary or a device node it plants gives an unprivileged host user nothing.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "sandbox/sys/fs.h"
#include "sandbox/userns.h"
#include "tests/runner/cli_fixture.h"

namespace sandrun::testing {
namespace {

class OwnershipTest : public CliTest {
 protected:
  // Every entry below `dir` (itself excluded): "path uid:gid type".
  static std::vector<std::string> owners(const std::string& dir) {
    auto r = run_command({"find", dir, "-mindepth", "1", "-printf", "%P %U:%G %y\n"});
    EXPECT_EQ(r.status, 0) << r.err;
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < r.out.size()) {
      size_t end = r.out.find('\n', pos);
      out.push_back(r.out.substr(pos, end - pos));
      pos = end + 1;
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // A directory of the test's, owned by uid:gid with `mode`.
  std::string dir(const std::string& name, unsigned uid, unsigned mode) {
    std::string d = tmp_ / name;
    EXPECT_EQ(::mkdir(d.c_str(), mode), 0);
    EXPECT_EQ(::chown(d.c_str(), uid, uid), 0);
    EXPECT_EQ(::chmod(d.c_str(), mode), 0);
    return d;
  }
  // `argv` as uid:gid 65534 (nobody), without supplementary groups.
  static CommandResult as_nobody(std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    return run_command(argv);
  }
  static unsigned range_start() { return sandbox::userns::remapped_root().uid_map.at(0).outside; }
};

TEST_F(OwnershipTest, AWorkspaceOwnedBy4242ReceivesTheJobsFilesOwnedBy4242AsRootAndAsAnotherUser) {
  const std::string ws = dir("ws", 4242, 0755);
  auto r = sandrun({"run", "-j", "1", jobs(fmt::format(R"toml(
[jobs.as-root]
workspace = "{0}"
run = "touch by-root; mkdir -p dir/sub; echo x > dir/sub/file; cp /bin/busybox copied; chown 0:0 copied; stat -c '%u:%g' /workspace"
[jobs.as-user]
workspace = "{0}"
user = "1000:1000"
run = "touch by-user; stat -c '%u:%g' /workspace"
)toml", ws))});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  // Inside, the checkout is the job user's own.
  EXPECT_EQ(log("as-root"), "0:0\n");
  EXPECT_EQ(log("as-user"), "1000:1000\n");
  EXPECT_EQ(owners(ws), (std::vector<std::string>{"by-root 4242:4242 f", "by-user 4242:4242 f", "copied 4242:4242 f",
                                                  "dir 4242:4242 d", "dir/sub 4242:4242 d", "dir/sub/file 4242:4242 f"}));
  expect_nothing_left();
}

TEST_F(OwnershipTest, ARootOwnedBindReceivesNothingOwnedByRoot) {
  // Root's 0755 directory: the job may read it and write nothing; root's 0777 (or 1777)
  // directory: the job writes as its own unprivileged id, never as host root.
  const std::string closed = dir("closed", 0, 0755);
  write_file(closed + "/present", "host\n");
  const std::string open = dir("open", 0, 0777);
  auto r = sandrun({"run", "-j", "1", jobs(fmt::format(R"toml(
[jobs.closed]
workspace = "{0}"
run = "cat present; stat -c '%u' /workspace; touch mine 2>/dev/null || echo refused; (echo more >> present) 2>/dev/null || echo refused"
[jobs.open]
volumes = ["{1}:/open"]
run = "touch /open/mine; mkdir /open/d; chown 0:0 /open/mine; cp /bin/busybox /open/suid; chmod 4755 /open/suid; echo done"
)toml", closed, open))});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  EXPECT_EQ(log("closed"), "host\n65534\nrefused\nrefused\n");
  EXPECT_EQ(owners(closed), std::vector<std::string>{"present 0:0 f"});
  EXPECT_EQ(read_file(closed + "/present"), "host\n");
  EXPECT_EQ(log("open"), "done\n");
  const std::string id = std::to_string(range_start());
  EXPECT_EQ(owners(open), (std::vector<std::string>{"d " + id + ":" + id + " d", "mine " + id + ":" + id + " f",
                                                    "suid " + id + ":" + id + " f"}));
  expect_nothing_left();
}

TEST_F(OwnershipTest, ASetuidBinaryAndADeviceNodePlantedInTheWorkspaceGiveAHostUserNothing) {
  const std::string ws = dir("ws", 4242, 0755);
  ASSERT_EQ(run_command({"cp", probe_bin(), ws + "/probe"}).status, 0);
  give_to_checkout_owner(ws);
  // The control: a setuid file of this directory does take effect on the host (so the test
  // below could see a planted setuid-root file work).
  ASSERT_EQ(run_command({"cp", probe_bin(), tmp_ / "control"}).status, 0);
  ASSERT_EQ(::chown((tmp_ / "control").c_str(), 4242, 4242), 0);
  ASSERT_EQ(::chmod((tmp_ / "control").c_str(), 04755), 0);
  auto control = as_nobody({tmp_ / "control", "ids"});
  ASSERT_EQ(control.out, "uid=65534 gid=65534 euid=4242 egid=65534\n") << control.err;

  // The attack of the issue, as the container's root.
  auto r = sandrun({"run", jobs(fmt::format(R"toml(
[jobs.plant]
workspace = "{0}"
run = '''
cp probe suid && chown 0:0 suid && chmod 4755 suid && echo planted
mknod -m 0666 disk b 7 0 2>/dev/null && echo block-made
mknod -m 0666 null c 1 3 2>/dev/null && echo char-made
true
'''
)toml", ws))});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  EXPECT_EQ(log("plant"), "planted\n");
  struct stat st;
  ASSERT_EQ(::stat((ws + "/suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4242u);  // the checkout's owner, whatever the container's root asked for
  auto used = as_nobody({ws + "/suid", "ids"});
  EXPECT_EQ(used.status, 0) << used.err;
  EXPECT_EQ(used.out.find("euid=0 "), std::string::npos) << used.out;
  EXPECT_EQ(used.out, "uid=65534 gid=65534 euid=4242 egid=65534\n");
  for (const char* node : {"disk", "null"}) EXPECT_FALSE(fs::exists(ws + "/" + node)) << node;
  for (const auto& line : owners(ws)) EXPECT_EQ(line.find(" 0:"), std::string::npos) << line;
  expect_nothing_left();
}

// A bind's path is resolved when the run is planned and opened without following symlinks when
// the container starts: an earlier job that swaps a directory of the path for a symlink to the
// host's / (its checkout is shared) gets the later job an error, never a bind of the host's /.
TEST_F(OwnershipTest, AVolumePathSwappedForASymlinkByAnEarlierJobIsRefusedNotFollowed) {
  for (const char* userns : {"true", "false"}) {
    SCOPED_TRACE(userns);
    const std::string ws = dir(std::string("ws-") + userns, 4242, 0755);
    ASSERT_TRUE(fs::mkdirs(ws + "/sub"));
    give_to_checkout_owner(ws);
    auto r = sandrun({"run", jobs(fmt::format(R"toml(
[defaults]
userns = {1}
[jobs.swap]
workspace = "{0}"
run = "mv sub sub.real && ln -s / sub && echo swapped"
[jobs.use]
needs = ["swap"]
volumes = ["{0}/sub:/v"]
run = "ls /v/etc/shadow && echo HOST-ROOT-BOUND"
)toml", ws, userns), std::string("swap-") + userns + ".toml")});
    EXPECT_EQ(r.status, 1) << r.err << r.out;
    EXPECT_EQ(log("swap"), "swapped\n");
    EXPECT_EQ(log("use").find("HOST-ROOT-BOUND"), std::string::npos) << log("use");
    EXPECT_NE(r.err.find("Too many levels of symbolic links"), std::string::npos) << r.err;
    expect_nothing_left();
  }
}

}  // namespace
}  // namespace sandrun::testing
