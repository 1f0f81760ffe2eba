// Issue 15 items 2, 10, 11 and 13 end to end, each attack for real through the built binary:
// a stdout flood and an endless line against log_max, a full output directory, escape
// sequences in output and names, and a reader that stops reading sandrun's output. Anything
// that writes a lot writes to a small tmpfs the test mounts as --out.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sandbox/sys/fs.h"
#include "tests/runner/cli_fixture.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A tmpfs of `size` mounted at `dir` (made), unmounted at the end of the test.
class SmallTmpfs {
 public:
  SmallTmpfs(const std::string& dir, const std::string& size) : dir_(dir) {
    ::mkdir(dir.c_str(), 0755);
    ok_ = ::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, ("size=" + size).c_str()) == 0;
  }
  ~SmallTmpfs() {
    if (ok_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }
  uint64_t used() const {
    struct statvfs st{};
    ::statvfs(dir_.c_str(), &st);
    return (st.f_blocks - st.f_bfree) * st.f_frsize;
  }

 private:
  std::string dir_;
  bool ok_ = false;
};

// sandrun started with its stdout on a pipe the test reads (or never reads), its stderr on the
// same pipe or in a file; a thread samples its peak RSS (VmHWM) until it exits.
class Spawned {
 public:
  Spawned(const std::string& root, const std::vector<std::string>& args, const std::string& err_file) {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    std::vector<std::string> argv = {sandrun_bin(), "--root", root};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> a;  // made before fork: the child only calls async-signal-safe functions
    for (auto& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(p[1], 1);
      const int err = err_file.empty() ? p[1] : ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      ::dup2(err, 2);
      const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      ::dup2(null, 0);
      ::execv(a[0], a.data());
      ::_exit(127);
    }
    ::close(p[1]);
    out_ = p[0];
    sampler_ = std::thread([this] {
      const std::string status = fmt::format("/proc/{}/status", pid_);
      while (!done_) {
        std::ifstream f(status);
        std::string line;
        while (std::getline(f, line)) {
          if (line.rfind("VmHWM:", 0) == 0) peak_kb_ = std::max<uint64_t>(peak_kb_, std::stoull(line.substr(6)));
        }
        std::this_thread::sleep_for(10ms);
      }
    });
  }
  ~Spawned() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
    if (out_ >= 0) ::close(out_);
  }
  int out_fd() const { return out_; }
  // Reads stdout to its end, calling `line` for each line.
  template <typename F>
  void read_lines(F&& line) {
    std::string buf;
    char chunk[65536];
    for (;;) {
      ssize_t n = ::read(out_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      buf.append(chunk, static_cast<size_t>(n));
      size_t start = 0, nl;
      while ((nl = buf.find('\n', start)) != std::string::npos) {
        line(std::string_view(buf).substr(start, nl - start));
        start = nl + 1;
      }
      buf.erase(0, start);
    }
    if (!buf.empty()) line(std::string_view(buf));
  }
  int wait() {
    int st = 0;
    ::waitpid(pid_, &st, 0);
    reaped_ = true;
    done_ = true;
    if (sampler_.joinable()) sampler_.join();
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  uint64_t peak_rss_kb() const { return peak_kb_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool reaped_ = false;
  std::atomic<bool> done_{false};
  std::atomic<uint64_t> peak_kb_{0};
  std::thread sampler_;
};

uint64_t file_size(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

size_t count(std::string_view text, std::string_view what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The RSS sandrun may reach while its jobs print hundreds of MB: far below what it printed.
// Under AddressSanitizer freed memory waits in its quarantine (256 MiB by default) and every
// allocation has shadow and redzones: 300-600 MB were seen there, still far below a flood's.
#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kRssBoundKb = 1024 * 1024;
#else
constexpr uint64_t kRssBoundKb = 96 * 1024;
#endif

class OutputBoundsTest : public CliTest {};

// Item 2: 100 MB of lines (also with --quiet) into a 48 MiB tmpfs --out: the log stops at
// log_max with its head, a marker and its tail; the console says so once; memory stays bounded.
TEST_F(OutputBoundsTest, AStdoutFloodStopsAtLogMaxWithHeadMarkerAndTail) {
  for (const bool quiet : {false, true}) {
    SCOPED_TRACE(quiet ? "--quiet" : "plain");
    const std::string out = tmp_ / (quiet ? "out-quiet" : "out");
    SmallTmpfs tmpfs(out, "48m");
    ASSERT_TRUE(tmpfs.ok());
    const std::string file = jobs(R"toml(
[jobs.flood]
run = "echo first; yes 0123456789abcdefghijklmnopqrstu | head -c 100000000; echo last"
log_max = "8MiB"
)toml");
    std::vector<std::string> args = {"run", "--out", out, file};
    if (quiet) args.insert(args.begin() + 1, "--quiet");
    Spawned s(root(), args, tmp_ / "err.txt");
    std::string shown;
    size_t lines = 0;
    s.read_lines([&](std::string_view l) {
      ++lines;
      if (shown.size() < (1 << 20)) shown.append(l).append("\n");
    });
    const int status = s.wait();
    const std::string err = read_file(tmp_ / "err.txt");
    EXPECT_EQ(status, 0) << err.substr(err.size() > 8000 ? err.size() - 8000 : 0);
    const std::string log_path = out + "/logs/flood.log";
    const std::string log = read_file(log_path);
    const uint64_t total = 6 + 100000000 + 5;
    const std::string marker = fmt::format(
        "sandrun: log truncated at log_max (8 MiB): {} bytes dropped here; its last 2097152 bytes follow\n",
        total - (8 << 20));
    // The head (6 MiB) ends inside a line: the marker starts a line of its own.
    ASSERT_EQ(log.size(), (8u << 20) + 1 + marker.size());
    EXPECT_EQ(log.substr(0, 38), "first\n0123456789abcdefghijklmnopqrstu\n");
    EXPECT_EQ(log.substr((6 << 20), 1 + marker.size()), "\n" + marker);
    EXPECT_EQ(log.substr(log.size() - 5), "last\n");
    EXPECT_LT(tmpfs.used(), 16u << 20) << "the tmpfs holds the bounded log and the reports";
    const std::string note = "[flood] sandrun: the log " + log_path + " reached log_max (8 MiB)";
    EXPECT_EQ(count(err, note), quiet ? 0u : 1u) << err.substr(0, 4000);
    EXPECT_LT(s.peak_rss_kb(), kRssBoundKb);
    RecordProperty(quiet ? "flood_quiet_peak_rss_kb" : "flood_peak_rss_kb", std::to_string(s.peak_rss_kb()));
    RecordProperty(quiet ? "flood_quiet_tmpfs_used" : "flood_tmpfs_used", std::to_string(tmpfs.used()));
    const json summary = json::parse(read_file(out + "/summary.json"));
    EXPECT_EQ(summary["finished"], true);
    EXPECT_EQ(summary["jobs"][0]["status"], "passed");
  }
  expect_nothing_left();
}

// Item 2: log_max from the job file's [defaults], the host file's [defaults], and the host
// policy's max_log as a ceiling (given to a job without one, refusing a job above it).
TEST_F(OutputBoundsTest, LogMaxComesFromDefaultsAndTheHostFileAndIsCappedByItsPolicy) {
  const std::string host = tmp_ / "host.toml";
  write_file(host, "[policy]\nmax_log = \"256KiB\"\n[defaults]\nlog_max = \"128KiB\"\n");
  const std::string file = jobs(R"toml(
[jobs.host_default]
run = "yes 0123456789 | head -c 1000000"
[jobs.own]
run = "yes 0123456789 | head -c 1000000"
log_max = "192KiB"
)toml");
  auto r = sandrun({"--config", host, "run", "--quiet", file});
  EXPECT_EQ(r.status, 0) << r.err;
  using JobMax = std::pair<std::string, uint64_t>;
  for (const auto& [job, max] : {JobMax{"host_default", 128 << 10}, JobMax{"own", 192 << 10}}) {
    const std::string text = log(job);
    EXPECT_NE(text.find(fmt::format("sandrun: log truncated at log_max ({} KiB): {} bytes dropped here", max >> 10,
                                    1000000 - max)),
              std::string::npos)
        << job;
    EXPECT_LT(text.size(), max + 200) << job;
  }
  // Without a [defaults] in the host file the policy's ceiling is the job's bound.
  write_file(host, "[policy]\nmax_log = \"256KiB\"\n");
  auto ceiling = sandrun({"--config", host, "run", "--quiet", file, "host_default"});
  EXPECT_EQ(ceiling.status, 0) << ceiling.err;
  EXPECT_NE(log("host_default").find("sandrun: log truncated at log_max (256 KiB)"), std::string::npos);
  write_file(host, "[policy]\nmax_log = \"128KiB\"\n");
  auto above = sandrun({"--config", host, "run", file});
  EXPECT_EQ(above.status, 2);
  EXPECT_EQ(above.err, "sandrun: " + file + ":6:11: jobs.own.log_max: log_max = 192 KiB is above the policy's max_log (" +
                           host + ":2:11: max_log = \"128 KiB\")\n");
  // The job file's [defaults], and a value below the minimum.
  auto small = sandrun({"run", jobs("[defaults]\nlog_max = 1000\n[jobs.a]\nrun = \"true\"\n", "small.toml")});
  EXPECT_EQ(small.status, 2);
  EXPECT_NE(small.err.find("small.toml:2:11: defaults.log_max: 1000 B is below the minimum of 64 KiB"), std::string::npos)
      << small.err;
  expect_nothing_left();
}

// Item 2: one endless line (tr '\0' a </dev/zero, 48 MB of it) in --format json: events carry
// parts of at most 16 KiB, marked, with no byte lost; the log stops at log_max; RSS bounded.
TEST_F(OutputBoundsTest, AnEndlessLineComesInMarkedPartsOfAtMost16KiB) {
  const std::string out = tmp_ / "out";
  SmallTmpfs tmpfs(out, "16m");
  ASSERT_TRUE(tmpfs.ok());
  const std::string file = jobs(R"toml(
[jobs.line]
run = "head -c 48000000 /dev/zero | tr '\\0' a"
log_max = "1MiB"
)toml");
  Spawned s(root(), {"run", "--format", "json", "--out", out, file}, tmp_ / "err.txt");
  uint64_t bytes = 0, parts = 0, partial = 0, continued = 0, hidden = 0;
  size_t longest = 0;
  bool notes = false;
  s.read_lines([&](std::string_view l) {
    const json e = json::parse(l.begin(), l.end());
    if (e["event"] == "output_not_shown") hidden += e["lines"].get<uint64_t>();
    if (e["event"] == "job_note") notes = notes || e["text"].get<std::string>().find("reached log_max (1 MiB)") != std::string::npos;
    if (e["event"] != "job_output") return;
    const auto& line = e["line"].get_ref<const std::string&>();
    longest = std::max(longest, line.size());
    bytes += line.size();
    ++parts;
    partial += e.value("partial", false);
    continued += e.value("continued", false);
  });
  EXPECT_EQ(s.wait(), 0) << read_file(tmp_ / "err.txt");
  EXPECT_LE(longest, 16384u);
  EXPECT_TRUE(notes);
  if (hidden == 0) {  // the test reads as fast as it can; a slower reader sees output_not_shown
    EXPECT_EQ(bytes, 48000000u);
    EXPECT_EQ(parts, (48000000u + 16383) / 16384);
    EXPECT_EQ(partial, parts - 1);
    EXPECT_EQ(continued, parts - 1);
  }
  EXPECT_EQ(file_size(out + "/logs/line.log"), (1u << 20) + 1 +
            fmt::format("sandrun: log truncated at log_max (1 MiB): {} bytes dropped here; its last 524288 bytes follow\n",
                        48000000 - (1 << 20)).size());
  EXPECT_LT(s.peak_rss_kb(), kRssBoundKb);
  RecordProperty("endless_line_peak_rss_kb", std::to_string(s.peak_rss_kb()));
  RecordProperty("endless_line_parts", std::to_string(parts));
  RecordProperty("endless_line_hidden", std::to_string(hidden));
  expect_nothing_left();
}

// Item 13: sandrun's stdout and stderr a pipe nobody reads. Every job still ends in its time
// (a timeout still fires), the logs are complete, summary.json is written; once the reader
// reads again it is told how many lines it was not shown.
TEST_F(OutputBoundsTest, AStoppedReaderStallsNoJobAndTheLogsStayComplete) {
  const std::string out = tmp_ / "out";
  SmallTmpfs tmpfs(out, "256m");
  ASSERT_TRUE(tmpfs.ok());
  const std::string file = jobs(R"toml(
[jobs.a]
run = "yes line-of-a | head -c 30000000"
[jobs.b]
run = "yes line-of-b | head -c 30000000"
[jobs.slow]
run = "sleep 60"
timeout = "3s"
)toml");
  Spawned s(root(), {"run", "-j", "3", "--out", out, file}, "");
  const auto start = std::chrono::steady_clock::now();
  json summary;
  ASSERT_TRUE(eventually(
      [&] {
        auto text = fs::read_file(out + "/summary.json");
        if (!text || !json::accept(*text)) return false;
        summary = json::parse(*text);
        return summary["finished"] == true;
      },
      60s))
      << "the run stalled behind the stopped reader";
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, 30s);
  EXPECT_EQ(summary["jobs"][0]["status"], "passed");
  EXPECT_EQ(summary["jobs"][1]["status"], "passed");
  EXPECT_EQ(summary["jobs"][2]["status"], "timed_out");
  EXPECT_LT(summary["jobs"][2]["duration_ms"].get<int64_t>(), 10000);
  EXPECT_EQ(file_size(out + "/logs/a.log"), 30000000u);
  EXPECT_EQ(file_size(out + "/logs/b.log"), 30000000u);
  EXPECT_LT(s.peak_rss_kb(), kRssBoundKb);
  RecordProperty("stopped_reader_peak_rss_kb", std::to_string(s.peak_rss_kb()));
  RecordProperty("stopped_reader_run_ms",
                 std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
  // The reader comes back: what it gets is bounded, and says what it missed.
  std::string got;
  s.read_lines([&](std::string_view l) {
    if (l.find("of output not shown") != std::string_view::npos || l.find("line-of") == std::string_view::npos)
      got.append(l).append("\n");
  });
  EXPECT_EQ(s.wait(), 1);  // the timed-out job fails the run
  EXPECT_EQ(count(got, "lines of output not shown: the console fell behind (the log files have every line)"), 1u)
      << got.substr(0, 4000);
  EXPECT_NE(got.find("[slow] killed: timed out after 3s"), std::string::npos) << got.substr(0, 4000);
  expect_nothing_left();
}

// Item 10: a full --out. The logs fill a 4 MiB tmpfs; summary.json is still written (its room
// was reserved), and the error names the output directory, not --root.
TEST_F(OutputBoundsTest, AFullOutputDirectoryStillGetsItsSummaryAndIsNamed) {
  const std::string out = tmp_ / "out";
  SmallTmpfs tmpfs(out, "4m");
  ASSERT_TRUE(tmpfs.ok());
  const std::string file = jobs(R"toml(
[jobs.fill]
run = "yes filling | head -c 20000000"
[jobs.after]
run = "echo after"
needs = ["fill"]
)toml");
  auto r = sandrun({"run", "--out", out, file});
  const size_t warned = r.err.find("writing " + out + "/logs/fill.log failed, the log is incomplete: ");
  ASSERT_NE(warned, std::string::npos) << r.err;
  EXPECT_NE(r.err.find("No space left on device", warned), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("--root"), std::string::npos) << r.err;
  const json summary = json::parse(read_file(out + "/summary.json"));
  EXPECT_EQ(summary["finished"], true);
  ASSERT_EQ(summary["jobs"].size(), 2u);
  EXPECT_EQ(summary["jobs"][0]["status"], "passed");
  EXPECT_EQ(summary["jobs"][1]["job"], "after");
  EXPECT_FALSE(fs::exists(out + "/.summary-reserve"));
  expect_nothing_left();

  // Already full before the run: refused at once, naming the directory and --out.
  write_file(out + "/ballast", "");
  (void)run_command({"sh", "-c", "cat /dev/zero > " + out + "/ballast"});
  auto full = sandrun({"run", "--out", out, file});
  EXPECT_EQ(full.status, 1);
  EXPECT_NE(full.err.find("reserve room for the run's summary.json"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find("No space left on device"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find("the file system holding the output directory " + out +
                          " is full: free space there, or give --out another directory"),
            std::string::npos)
      << full.err;
  EXPECT_EQ(full.err.find("--root"), std::string::npos) << full.err;
  expect_nothing_left();
}

// Item 11: escape sequences printed by a job, and in an artifact's name, reach the console as
// visible escapes; the log keeps the bytes as written.
TEST_F(OutputBoundsTest, EscapeSequencesReachTheConsoleEscapedAndTheLogAsWritten) {
  const std::string file = jobs(R"toml(
[jobs.evil]
run = "printf '\\033]0;PWNED-TITLE\\007\\033[2J\\n'; mkdir out; mkfifo \"$(printf 'out/\\033[2Jfifo')\"; echo bad >&2; exit 1"
artifacts = ["out/**"]
)toml");
  auto r = sandrun({"run", file});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\x07'), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("[evil] \\x1b]0;PWNED-TITLE\\x07\\x1b[2J\n"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("\\x1b[2Jfifo"), std::string::npos) << r.err;
  // The summary's tail of the failed job, too.
  EXPECT_NE(r.out.find("  \\x1b]0;PWNED-TITLE\\x07\\x1b[2J\n"), std::string::npos) << r.out;
  EXPECT_NE(log("evil").find("\x1b]0;PWNED-TITLE\x07\x1b[2J\n"), std::string::npos);
  expect_nothing_left();
}

// Item 11: control characters in names are refused where they are written.
TEST_F(OutputBoundsTest, ControlCharactersInNamesAreRefusedWithTheirPosition) {
  auto matrix = sandrun({"run", jobs("[jobs.m]\nrun = \"true\"\nmatrix = { v = [\"ok\", \"\\u001b]0;PWNED\\u0007\"] }\n")});
  EXPECT_EQ(matrix.status, 2) << matrix.err;
  EXPECT_NE(matrix.err.find(tmp_ / "jobs.toml:3:23: jobs.m.matrix.v[1]: \"\\x1b]0;PWNED\\x07\" must not contain "
                            "control characters (\"\\x1b\" at byte 0): the value is part of the job's name"),
            std::string::npos)
      << matrix.err;
  auto env = sandrun({"run", jobs("[jobs.e]\nrun = \"true\"\nenv = { \"A\\nB\" = \"x\" }\n")});
  EXPECT_EQ(env.status, 2) << env.err;
  EXPECT_NE(env.err.find(tmp_ / "jobs.toml:3:9: jobs.e.env: invalid variable name \"A\\x0aB\": must not contain "
                         "control characters (\"\\x0a\" at byte 1)"),
            std::string::npos)
      << env.err;
  auto name = sandrun({"run", jobs("[jobs.\"x\\u001b[2J\"]\nrun = \"true\"\n")});
  EXPECT_EQ(name.status, 2) << name.err;
  EXPECT_NE(name.err.find("invalid job name \"x\\x1b[2J\""), std::string::npos) << name.err;
  EXPECT_EQ(name.err.find('\x1b'), std::string::npos);
  auto exec_env = sandrun({"exec", "-e", "A\nB=1", "--", "true"});
  EXPECT_EQ(exec_env.status, 2) << exec_env.err;
  EXPECT_NE(exec_env.err.find("invalid variable name \"A\\x0aB\": must not contain control characters"),
            std::string::npos)
      << exec_env.err;
}

}  // namespace
}  // namespace sandrun::testing
