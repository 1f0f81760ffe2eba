// Containers in a user namespace that maps their root to an unprivileged host range (as root).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "sandbox/cgroup.h"
#include "sandbox/host_features.h"
#include "sandbox/plan.h"
#include "sandbox/sys/fs.h"
#include "sandbox/userns.h"
#include "tests/sandbox/sandbox_harness.h"
#include "tests/support/rootfs.h"

namespace sandrun::testing {
namespace {

using sandbox::IdMap;
using sandbox::Outcome;
namespace userns = sandbox::userns;

constexpr uint32_t kHost = userns::kDefaultRangeStart;

class UsernsTest : public SandboxFixture {
 protected:
  void SetUp() override {
    SandboxFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    SANDRUN_REQUIRE(userns::probe().ok(), "user namespaces are not available");
  }
  // A spec whose root is host uid/gid kHost (the built-in range, as with no /etc/subuid entry).
  TestPlan remapped(std::vector<std::string> argv) {
    auto s = spec(std::move(argv));
    s.userns = userns::remapped_root("", "");
    return s;
  }
};

// The first line a running container writes, then the host's view of its PID 1.
std::string read_line(int fd) {
  std::string line;
  char c;
  struct pollfd p = {fd, POLLIN, 0};
  while (::poll(&p, 1, 10000) > 0 && ::read(fd, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

std::string status_field(pid_t pid, const std::string& field) {
  std::string status = read_file(fmt::format("/proc/{}/status", pid));
  auto pos = status.find(field + ":\t");
  if (pos == std::string::npos) return "";
  auto end = status.find('\n', pos);
  return status.substr(pos + field.size() + 2, end - pos - field.size() - 2);
}

TEST_F(UsernsTest, IdInsideIsRootWhileTheHostSeesTheRemappedUid) {
  auto s = remapped({"/bin/sh", "-c", "echo $(id -u):$(id -g); exec sleep 60"});
  auto sb = sandbox::Sandbox::start(s, s.place);
  ASSERT_TRUE(sb.ok()) << sb.error().render();
  UniqueFd out = sb->take_stdout();
  EXPECT_EQ(read_line(out.get()), "0:0");
  // PID 1 (sandrun-init) and the command run as the range's first id on the host.
  EXPECT_EQ(status_field(sb->pid(), "Uid"), fmt::format("{0}\t{0}\t{0}\t{0}", kHost));
  EXPECT_EQ(status_field(sb->pid(), "Gid"), fmt::format("{0}\t{0}\t{0}\t{0}", kHost));
  EXPECT_EQ(read_file(fmt::format("/proc/{}/uid_map", sb->pid())).find(std::to_string(kHost)) != std::string::npos, true);
  ASSERT_TRUE(sb->signal(SIGKILL).ok());
  ASSERT_TRUE(sb->wait().ok());
}

TEST_F(UsernsTest, ImageFilesBelongToTheContainersRootAndCanBeChanged) {
  // The layer belongs to host root; an idmapped mount shows it as the container's root, so
  // copy-up, whiteouts and opaque directories (user.overlay.* xattrs) work.
  auto s = remapped({"/bin/sh", "-c",
                     "stat -c %u:%g /bin/busybox /etc/passwd; echo extra >> /etc/passwd && tail -1 /etc/passwd;"
                     "rm -rf /etc && mkdir /etc && ls -A /etc | wc -l; echo new > /newfile"});
  auto r = run(s);
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::exited) << (r.outcome.error ? r.outcome.error->render() : "");
  EXPECT_EQ(r.out, "0:0\n0:0\nextra\n0\n");
  EXPECT_EQ(r.err, "");
  struct stat st;
  ASSERT_EQ(::stat((s.place.upper_dir + "/newfile").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kHost);
  EXPECT_EQ(st.st_gid, kHost);
  // The layer itself is untouched.
  EXPECT_EQ(read_file(layer_ + "/etc/passwd").find("extra"), std::string::npos);
}

TEST_F(UsernsTest, FilesWrittenToTheWorkspaceBelongToItsOwner) {
  std::string ws = tmp_ / "ws";
  ASSERT_TRUE(fs::mkdirs(ws).ok());
  ASSERT_EQ(::chown(ws.c_str(), 1000, 1000), 0);
  auto s = remapped({"/bin/sh", "-c", "stat -c %u:%g /workspace; echo hi > /workspace/out; mkdir /workspace/dir; id -u"});
  s.binds = {{ws, "/workspace", false, /*owner_is_root=*/true}};
  auto r = run(s);
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::exited) << (r.outcome.error ? r.outcome.error->render() : "");
  EXPECT_EQ(r.out, "0:0\n0\n");
  EXPECT_EQ(r.err, "");
  for (const char* name : {"/out", "/dir"}) {
    struct stat st;
    ASSERT_EQ(::stat((ws + name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_uid, 1000u) << name;
    EXPECT_EQ(st.st_gid, 1000u) << name;
  }
  EXPECT_EQ(read_file(ws + "/out"), "hi\n");
  EXPECT_TRUE(mounts_under(tmp_.path()).empty());
}

TEST_F(UsernsTest, OtherBindsKeepTheirOwnersAndStayUnwritableForTheContainer) {
  // A volume without owner mapping: host root's directory is nobody's in the container, and
  // the container's root (an unprivileged host uid) cannot write there.
  std::string vol = tmp_ / "vol";
  ASSERT_TRUE(fs::mkdirs(vol).ok());
  auto s = remapped({"/bin/sh", "-c", "stat -c %u /data; touch /data/x 2>/dev/null || echo refused"});
  s.binds = {{vol, "/data", false}};
  auto r = run(s);
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.out, "65534\nrefused\n");
  EXPECT_FALSE(fs::exists(vol + "/x"));
}

TEST_F(UsernsTest, CapabilitiesAreTheDefaultSetOfTheNamespacesRoot) {
  auto s = remapped({"/bin/sh", "-c", "grep -E '^Cap(Eff|Bnd|Inh|Amb)' /proc/self/status | cut -f2 | tr '\\n' ' '"});
  auto r = run(s);
  ASSERT_TRUE(r.started) << r.start_error;
  const std::string caps = fmt::format("{:016x}", sandbox::kDefaultCapabilities);
  EXPECT_EQ(r.out, fmt::format("0000000000000000 {0} {0} 0000000000000000 ", caps));
}

TEST_F(UsernsTest, SetuidRootBinaryReachesOnlyTheNamespacesRoot) {
  // A setuid-root program in the image, started by container user 1000 with no_new_privs off:
  // it becomes the namespace's root, which is host uid kHost, nothing more.
  const std::string suid = layer_ + "/usr/bin/suid-probe";
  ASSERT_EQ(::system(fmt::format("cp {} {}", layer_ + "/usr/bin/probe", suid).c_str()), 0);
  ASSERT_EQ(::chown(suid.c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(suid.c_str(), 04755), 0);
  for (bool nnp : {false, true}) {
    auto s = remapped({"/bin/sh", "-c", "/usr/bin/suid-probe ids; cat /proc/self/uid_map | tr -s ' '"});
    s.uid = 1000;
    s.gid = 1000;
    s.hardening.no_new_privs = nnp;
    auto r = run(s);
    ASSERT_TRUE(r.started) << r.start_error;
    const std::string ids = nnp ? "uid=1000 gid=1000 euid=1000 egid=1000" : "uid=1000 gid=1000 euid=0 egid=1000";
    EXPECT_EQ(r.out, fmt::format("{}\n 0 {} 65536\n", ids, kHost)) << "no_new_privs=" << nnp;
  }
}

TEST_F(UsernsTest, AMappingTheKernelRefusesFailsTheStartWithTheFileAndPid) {
  auto s = remapped({"/bin/true"});
  s.userns.uid_map = {{0, kHost, 10}, {5, kHost + 100, 10}};  // overlapping container ids
  s.userns.idmap_layers = false;  // else the layers' idmapped mount refuses the map first
  auto sb = sandbox::Sandbox::start(s, s.place);
  ASSERT_FALSE(sb.ok());
  const std::string msg = sb.error().message();
  EXPECT_EQ(msg.rfind("set up the container's user namespace: write uid_map of the container (pid ", 0), 0u) << msg;
  EXPECT_NE(msg.find("): Invalid argument"), std::string::npos) << msg;
  EXPECT_NE(sb.error().hint_text().find("the kernel refused the mapping"), std::string::npos);
  EXPECT_FALSE(host_has_process({"/bin/true"}));
}

TEST_F(UsernsTest, TheContainerJoinsItsCgroup) {
  auto backend = sandbox::cgroup::Backend::detect();
  SANDRUN_REQUIRE(backend.ok(), "no cgroups here");
  const std::string run_name = fmt::format("userns-test-{}", ::getpid());
  auto group = (*backend)->create(run_name, "c", {{}, {}, uint64_t{64}, {}});
  ASSERT_TRUE(group.ok()) << group.error().render();
  auto s = remapped({"/bin/sh", "-c", "cat /proc/self/cgroup | grep -c pids:/$; echo up; exec sleep 60"});
  auto sb = sandbox::Sandbox::start(s, s.place, group->get());
  ASSERT_TRUE(sb.ok()) << sb.error().render();
  UniqueFd out = sb->take_stdout();
  const std::string first = read_line(out.get());
  EXPECT_EQ(read_line(out.get()), "up");
  auto procs = (*group)->procs();
  ASSERT_TRUE(procs.ok());
  EXPECT_NE(std::find(procs->begin(), procs->end(), sb->pid()), procs->end());
  ASSERT_TRUE(sb->signal(SIGKILL).ok());
  ASSERT_TRUE(sb->wait().ok());
  group->reset();
  EXPECT_TRUE((*backend)->remove_run(run_name).ok());
  (void)first;
}

// The layers' idmapped mounts are made with the container's own user namespace and reach it
// with its release, at most sandbox::kFdsPerMessage per message: an image of more layers than
// that gets them all, in order, each shown as the container root's.
TEST_F(UsernsTest, AnImageOfMoreLayersThanOneReleaseMessageCarriesSeesEveryLayer) {
  constexpr size_t kLayers = sandbox::kFdsPerMessage + 10;
  auto s = remapped({"/bin/sh", "-c",
                     fmt::format("cat /layer-0 /layer-{0} /layer-{1} /shadowed; stat -c %u:%g /layer-{1}; "
                                 "ls / | grep -c '^layer-'",
                                 kLayers / 2, kLayers - 1)});
  std::vector<std::string> lowers;
  for (size_t i = 0; i < kLayers; ++i) {
    const std::string dir = tmp_ / fmt::format("many/{}", i);
    ASSERT_TRUE(fs::mkdirs(dir).ok());
    write_file(dir + fmt::format("/layer-{}", i), fmt::format("{}\n", i));
    write_file(dir + "/shadowed", fmt::format("top is {}\n", i));
    lowers.push_back(dir);
  }
  lowers.push_back(layer_);  // busybox at the bottom
  s.lower_dirs = lowers;
  auto r = run(s);
  if (!sandbox::host::kernel_version().at_least(6, 8)) {
    // fsconfig() takes the layers one by one ("lowerdir+") only since 6.8.
    ASSERT_TRUE(r.started) << r.start_error;
    EXPECT_EQ(r.outcome.kind, Outcome::Kind::setup_failed);
    return;
  }
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::exited) << (r.outcome.error ? r.outcome.error->render() : "");
  EXPECT_EQ(r.out, fmt::format("0\n{}\n{}\ntop is 0\n0:0\n{}\n", kLayers / 2, kLayers - 1, kLayers));
  EXPECT_EQ(r.err, "");
}

// Pure logic: the maps each mode builds.
TEST(UsernsMaps, RemappedRootTakesSandrunsOwnRangeElseTheDefaultNeverRoots) {
  auto a = userns::remapped_root("root:100000:65536\nsandrun:300000:70000\n", "root:100000:65536\nsandrun:400000:65536\n");
  EXPECT_EQ(a.uid_map, (std::vector<IdMap>{{0, 300000, 65536}}));
  EXPECT_EQ(a.gid_map, (std::vector<IdMap>{{0, 400000, 65536}}));
  EXPECT_EQ(a.origin, "/etc/subuid and /etc/subgid: sandrun");
  // root's range belongs to other tools (rootful podman): sandrun keeps to its own.
  auto b = userns::remapped_root("root:100000:65536\n", "root:100000:65536\n");
  EXPECT_EQ(b.uid_map, (std::vector<IdMap>{{0, kHost, 65536}}));
  auto c = userns::remapped_root("bad line\nsandrun:0:65536\n", "sandrun:0:65536\n");
  EXPECT_EQ(c.uid_map, (std::vector<IdMap>{{0, kHost, 65536}}));  // a range at 0 would hand out host root
  EXPECT_TRUE(c.idmap_layers);
}

TEST(UsernsMaps, AFreeRangeAvoidsEveryRangeOfBothFiles) {
  EXPECT_EQ(userns::free_range_start("", ""), kHost);
  EXPECT_EQ(userns::free_range_start("ann:100000:65536\n", "bob:165536:65536\n"), kHost);
  // Something sits on the default: the first aligned start above every range.
  EXPECT_EQ(userns::free_range_start("x:2147500000:10\n", "y:3000000000:65536\n"), 3000000000u / 65536 * 65536 + 2 * 65536);
  EXPECT_EQ(userns::free_range_start("x:2147483648:10\ny:4294900000:60000\n", ""), std::nullopt);
}

TEST(UsernsMaps, ReserveRangeAppendsSandrunOnceToBothFiles) {
  char dir[] = "/tmp/sandrun-subid-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string uid = std::string(dir) + "/subuid", gid = std::string(dir) + "/subgid";
  ASSERT_TRUE(fs::write_file_atomic(uid, "ann:100000:65536").ok());  // no final newline
  ASSERT_TRUE(userns::reserve_range(uid, gid).ok());
  ASSERT_TRUE(userns::reserve_range(uid, gid).ok());  // idempotent
  EXPECT_EQ(*fs::read_file(uid), "ann:100000:65536\nsandrun:2147483648:65536\n");
  EXPECT_EQ(*fs::read_file(gid), "sandrun:2147483648:65536\n");
  auto ns = userns::remapped_root(*fs::read_file(uid), *fs::read_file(gid));
  EXPECT_EQ(ns.origin, "/etc/subuid and /etc/subgid: sandrun");
  // Only one file has it: the other gets the same start.
  ASSERT_TRUE(fs::write_file_atomic(gid, "").ok());
  ASSERT_TRUE(userns::reserve_range(uid, gid).ok());
  EXPECT_EQ(*fs::read_file(gid), "sandrun:2147483648:65536\n");
  ::unlink(uid.c_str());
  ::unlink(gid.c_str());
  ::rmdir(dir);
}

TEST(UsernsMaps, RootlessMapsTheUserAndItsSubordinateIdsOnlyWithHelpers) {
  auto single = userns::rootless(1000, 1001, "ann", "ann:100000:65536\n", "ann:200000:65536\n", false);
  EXPECT_EQ(single.uid_map, (std::vector<IdMap>{{0, 1000, 1}}));
  EXPECT_EQ(single.gid_map, (std::vector<IdMap>{{0, 1001, 1}}));
  EXPECT_FALSE(single.via_helpers);
  auto ranged = userns::rootless(1000, 1001, "ann", "ann:100000:65536\n", "1000:200000:65536\n", true);
  EXPECT_EQ(ranged.uid_map, (std::vector<IdMap>{{0, 1000, 1}, {1, 100000, 65535}}));
  EXPECT_EQ(ranged.gid_map, (std::vector<IdMap>{{0, 1001, 1}, {1, 200000, 65535}}));
  EXPECT_TRUE(ranged.via_helpers);
  EXPECT_EQ(userns::format_map(ranged.uid_map), "0 1000 1\n1 100000 65535\n");
}

TEST(UsernsMaps, OwnerAsRootKeepsTheRestOfTheRange) {
  EXPECT_EQ(userns::owner_as_root(1000, kHost, 65536),
            (std::vector<IdMap>{{1000, kHost, 1}, {kHost + 1, kHost + 1, 65535}}));
  EXPECT_EQ(userns::owner_as_root(kHost + 5, kHost, 10),
            (std::vector<IdMap>{{kHost + 5, kHost, 1}, {kHost + 1, kHost + 1, 4}, {kHost + 6, kHost + 6, 4}}));
  // Shown as the job's user 1000 (host kHost + 1000): neither it nor the owner shows twice.
  EXPECT_EQ(userns::owner_as(4242, kHost + 1000, kHost, 65536),
            (std::vector<IdMap>{{4242, kHost + 1000, 1}, {kHost, kHost, 1000}, {kHost + 1001, kHost + 1001, 64535}}));
  EXPECT_EQ(userns::owner_as(kHost + 7, kHost + 3, kHost, 10),
            (std::vector<IdMap>{{kHost + 7, kHost + 3, 1}, {kHost, kHost, 3}, {kHost + 4, kHost + 4, 3}, {kHost + 8, kHost + 8, 2}}));
  EXPECT_EQ(userns::to_host({{0, 5000, 1}, {1, 100000, 10}}, 3), std::optional<uint32_t>(100002));
  EXPECT_EQ(userns::to_host({{0, 5000, 1}}, 3), std::nullopt);
}

}  // namespace
}  // namespace sandrun::testing
