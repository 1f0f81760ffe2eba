// sandrun's own client (`sandrun ps|logs|stop|rm`, runner/cli/cmd_client.cc) against a real
// `sandrun serve`: containers made through the docker CLI show in its columns, its logs go to
// the right streams, and its errors (a missing container, no daemon) say what and where.
#include <cctype>

#include <nlohmann/json.hpp>

#include "tests/api/serve_fixture.h"

namespace sandrun::testing {
namespace {

class ServeCliTest : public CleanStopServeTest {
 protected:
  void SetUp() override {
    CleanStopServeTest::SetUp();
    require_docker();
    start();
  }
  // `sandrun --host unix://SOCKET args...` (no SANDRUN_HOST from the environment).
  CommandResult sandrun(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/env", "-u", "SANDRUN_HOST", sandrun_bin(), "--host", "unix://" + socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv);
  }
};

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// The row of `name` in ps's output ("" when it is not there).
std::string row_of(const std::string& out, const std::string& name) {
  for (const auto& l : lines_of(out)) {
    if (l.ends_with("  " + name)) return l;
  }
  return "";
}

TEST_F(ServeCliTest, PsListsRunningContainersInColumnsAndAllWithDashA) {
  const std::string up = out_of({"run", "-d", "--name", "up", "busybox", "sleep", "86611"});
  out_of({"create", "--name", "made", "busybox", "true"});
  EXPECT_EQ(docker({"run", "--name", "done", "busybox", "sh", "-c", "exit 3"}).status, 3);
  auto ps = sandrun({"ps"});
  ASSERT_EQ(ps.status, 0) << ps.err;
  EXPECT_EQ(ps.err, "");
  const auto lines = lines_of(ps.out);
  ASSERT_EQ(lines.size(), 2u) << ps.out;
  const std::string& head = lines[0];
  EXPECT_TRUE(head.starts_with("CONTAINER ID  IMAGE    COMMAND ")) << head;
  // Every column starts where its heading does.
  const std::string& row = lines[1];
  EXPECT_EQ(row.substr(0, 14), up.substr(0, 12) + "  ");
  EXPECT_EQ(row.substr(head.find("IMAGE"), 7), "busybox");
  EXPECT_EQ(row.substr(head.find("COMMAND"), 13), "\"sleep 86611\"");
  const std::string created = row.substr(head.find("CREATED"), head.find("STATUS") - head.find("CREATED"));
  EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(created[0])) && (created.find(" seconds ago") != std::string::npos || created.starts_with("1 second ago")))
      << row;
  EXPECT_TRUE(row.substr(head.find("STATUS")).starts_with("Up ")) << row;
  EXPECT_TRUE(row.ends_with("  up")) << row;
  EXPECT_EQ(head.find("NAMES"), row.rfind("up"));

  // -a: the created and the exited ones too, with Docker's status words.
  auto all = sandrun({"ps", "-a"});
  ASSERT_EQ(all.status, 0) << all.err;
  EXPECT_EQ(lines_of(all.out).size(), 4u) << all.out;
  const size_t status_col = lines_of(all.out)[0].find("STATUS");
  EXPECT_TRUE(row_of(all.out, "made").substr(status_col).starts_with("Created ")) << all.out;
  EXPECT_TRUE(row_of(all.out, "done").substr(status_col).starts_with("Exited (3) ")) << all.out;
  EXPECT_TRUE(row_of(all.out, "up").substr(status_col).starts_with("Up ")) << all.out;

  // SANDRUN_HOST names the daemon when --host does not.
  // (The same table as --host gives: taken just before or after, as CREATED moves with the
  // clock and a loaded machine can cross a second between two listings.)
  auto before = sandrun({"ps"});
  auto env = run_command({sandrun_bin(), "ps"}, {"SANDRUN_HOST=unix://" + socket()});
  auto after = sandrun({"ps"});
  EXPECT_EQ(env.status, 0) << env.err;
  EXPECT_TRUE(env.out == before.out || env.out == after.out) << env.out << "\n--host:\n" << before.out << after.out;
  out_of({"rm", "-f", "up", "made", "done"});
}

TEST_F(ServeCliTest, LogsSendsStdoutAndStderrToTheirOwnStreams) {
  // Two pipes: the log orders lines of the two streams as they were read, so the last one
  // comes a while after the stderr line.
  out_of({"run", "--name", "lg", "busybox", "sh", "-c", "echo one; echo two >&2; sleep 0.3; echo three"});
  auto logs = sandrun({"logs", "lg"});
  EXPECT_EQ(logs.status, 0) << logs.err;
  EXPECT_EQ(logs.out, "one\nthree\n");
  EXPECT_EQ(logs.err, "two\n");
  auto tail = sandrun({"logs", "--tail", "1", "lg"});
  EXPECT_EQ(tail.out + tail.err, "three\n");
  auto stamped = sandrun({"logs", "-t", "lg"});
  EXPECT_NE(stamped.out.find("Z one\n"), std::string::npos) << stamped.out;
  out_of({"rm", "lg"});
}

TEST_F(ServeCliTest, LogsFollowPrintsEachLineUntilTheContainerEnds) {
  out_of({"run", "-d", "--name", "fl", "busybox", "sh", "-c",
              "for i in 1 2 3 4; do echo line $i; echo err $i >&2; sleep 0.3; done"});
  auto r = sandrun({"logs", "-f", "fl"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "line 1\nline 2\nline 3\nline 4\n");
  EXPECT_EQ(r.err, "err 1\nerr 2\nerr 3\nerr 4\n");
  EXPECT_GE(r.elapsed.count(), 600) << "logs -f returned before the container's end";
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.Status}}", "fl"}), "exited\n");
  out_of({"rm", "fl"});
}

TEST_F(ServeCliTest, StopAndRmPrintTheNamesTheyHandled) {
  out_of({"run", "-d", "--name", "st", "busybox", "sleep", "86612"});
  auto stop = sandrun({"stop", "-t", "1", "st"});
  EXPECT_EQ(stop.status, 0) << stop.err;
  EXPECT_EQ(stop.out, "st\n");
  EXPECT_EQ(sandrun({"ps"}).out.find("st\n"), std::string::npos);
  const std::string all = sandrun({"ps", "-a"}).out;
  EXPECT_TRUE(row_of(all, "st").substr(lines_of(all)[0].find("STATUS")).starts_with("Exited (143) ")) << all;
  auto rm = sandrun({"rm", "st"});
  EXPECT_EQ(rm.status, 0) << rm.err;
  EXPECT_EQ(rm.out, "st\n");
  EXPECT_EQ(lines_of(sandrun({"ps", "-a"}).out).size(), 1u);
  // rm of a running one needs -f.
  out_of({"run", "-d", "--name", "busy", "busybox", "sleep", "86613"});
  auto refused = sandrun({"rm", "busy"});
  EXPECT_EQ(refused.status, 1);
  EXPECT_EQ(refused.out, "");
  EXPECT_NE(refused.err.find("sandrun: rm busy: You cannot remove a running container"), std::string::npos)
      << refused.err;
  auto forced = sandrun({"rm", "-f", "busy"});
  EXPECT_EQ(forced.status, 0) << forced.err;
  EXPECT_EQ(forced.out, "busy\n");
  EXPECT_EQ(out_of({"ps", "-aq"}), "");
}

TEST_F(ServeCliTest, AMissingContainerIsNamedAndTheOthersAreStillHandled) {
  out_of({"create", "--name", "here", "busybox", "true"});
  auto rm = sandrun({"rm", "nosuch", "here"});
  EXPECT_EQ(rm.status, 1);
  EXPECT_EQ(rm.out, "here\n");
  EXPECT_EQ(rm.err, "sandrun: rm nosuch: No such container: nosuch\n");
  auto stop = sandrun({"stop", "nosuch"});
  EXPECT_EQ(stop.status, 1);
  EXPECT_EQ(stop.err, "sandrun: stop nosuch: No such container: nosuch\n");
  auto logs = sandrun({"logs", "nosuch"});
  EXPECT_EQ(logs.status, 1);
  EXPECT_EQ(logs.out, "");
  EXPECT_EQ(logs.err, "sandrun: logs nosuch: No such container: nosuch\n");
  auto follow = sandrun({"logs", "-f", "nosuch"});
  EXPECT_EQ(follow.status, 1);
  EXPECT_EQ(follow.err, "sandrun: logs nosuch: No such container: nosuch\n");
}

TEST_F(ServeCliTest, NoDaemonOnTheSocketIsAClearError) {
  const std::string none = tmp_ / "nobody.sock";
  for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
           {"ps"}, {"logs", "x"}, {"stop", "x"}, {"rm", "x"}}) {
    std::vector<std::string> argv{sandrun_bin(), "--host", "unix://" + none};
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    auto r = run_command(argv);
    EXPECT_EQ(r.status, 1) << cmd[0];
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(r.err.starts_with("sandrun: cannot reach the sandrun daemon at unix://" + none +
                                  ": No such file or directory\n"))
        << cmd[0] << ": " << r.err;
    EXPECT_NE(r.err.find("is `sandrun serve` running? Name its socket with --host or SANDRUN_HOST"),
              std::string::npos)
        << r.err;
  }
  // A daemon that went away leaves a socket nobody answers on.
  stop();
  auto gone = run_command({sandrun_bin(), "ps"}, {"SANDRUN_HOST=unix://" + socket()});
  EXPECT_EQ(gone.status, 1);
  EXPECT_TRUE(gone.err.starts_with("sandrun: cannot reach the sandrun daemon at unix://" + socket() + ": ")) << gone.err;
  auto tcp = run_command({sandrun_bin(), "--host", "tcp://127.0.0.1:2375", "ps"});
  EXPECT_EQ(tcp.status, 1);
  EXPECT_EQ(tcp.err.substr(0, tcp.err.find('\n')),
            "sandrun: --host tcp://127.0.0.1:2375: only unix:// sockets are served (sandrun has no TCP listener)");
  auto relative = run_command({sandrun_bin(), "--host", "unix://rel.sock", "ps"});
  EXPECT_EQ(relative.status, 1);
  EXPECT_EQ(relative.err.substr(0, relative.err.find('\n')),
            "sandrun: --host unix://rel.sock: give an absolute socket path (unix:///path)");
}

}  // namespace
}  // namespace sandrun::testing
