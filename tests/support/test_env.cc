// Shared test helpers: capability checks, temp dirs, running the sandrun binary.
#include "tests/support/test_env.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "sandbox/sys/fs.h"

extern char** environ;

namespace sandrun::testing {

bool must_work() {
  // CI sets CI=true: there, a test that cannot run is a failure, never a silent skip.
  const char* v = std::getenv("SANDRUN_TESTS_MUST_WORK");
  const char* ci = std::getenv("CI");
  return (v && std::string(v) == "1") || (ci && std::string(ci) == "true");
}

bool is_root() { return ::geteuid() == 0; }

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/sandrun-test.XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  auto r = fs::remove_tree(path_);
  if (!r) ADD_FAILURE() << "cannot remove " << path_ << ": " << r.error().message();
}

void give_to_checkout_owner(const std::string& path) {
  const std::string owner = std::to_string(kCheckoutOwner);
  auto r = run_command({"chown", "-R", owner + ":" + owner, path});
  if (r.status != 0) ADD_FAILURE() << "chown -R " << owner << " " << path << ": " << r.err;
  // A checkout is 0755 (mkdtemp's 0700 would keep out anyone but its owner, host root too
  // once it has entered a container's user namespace to reopen the state dir beneath it).
  if (::chmod(path.c_str(), 0755) < 0) ADD_FAILURE() << "chmod 0755 " << path;
}

void write_file(const std::string& path, const std::string& content, int mode) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  f.close();
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

CommandResult run_command(const std::vector<std::string>& argv,
                          const std::vector<std::string>& env_extra) {
  CommandResult res;
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0) return res;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  for (auto& e : env_extra) envs.push_back(e);
  std::vector<char*> cenv, cargv;
  for (auto& e : envs) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  std::vector<std::string> args = argv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  auto start = std::chrono::steady_clock::now();
  pid_t pid;
  int rc = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(err[0]);
    res.err = std::string("spawn failed: ") + std::strerror(rc);
    return res;
  }
  struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* bufs[2] = {&res.out, &res.err};
  int open_count = 2;
  char buf[65536];
  while (open_count > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        bufs[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  res.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  res.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return res;
}

std::string sandrun_bin() { return SANDRUN_TEST_BIN; }
std::string probe_bin() { return SANDRUN_TEST_PROBE; }
std::string kv_server_bin() { return SANDRUN_TEST_KV_SERVER; }

CommandResult run_sandrun(const std::string& root, const std::vector<std::string>& args,
                          const std::vector<std::string>& env_extra) {
  std::vector<std::string> argv = {sandrun_bin(), "--root", root};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, env_extra);
}

Background::Background(const std::vector<std::string>& argv) {
  static int counter = 0;
  std::string base = std::string("/tmp/sandrun-bg-") + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  out_path_ = base + ".out";
  err_path_ = base + ".err";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  start_ = std::chrono::steady_clock::now();
  if (posix_spawnp(&pid_, cargv[0], &fa, nullptr, cargv.data(), environ) != 0) pid_ = -1;
  posix_spawn_file_actions_destroy(&fa);
}

Background::~Background() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  ::unlink(out_path_.c_str());
  ::unlink(err_path_.c_str());
}

void Background::signal(int sig) {
  if (pid_ <= 0) return;
  if (!signalled_) signalled_ = std::chrono::steady_clock::now();
  ::kill(pid_, sig);
}

CommandResult Background::finish() {
  CommandResult res;
  if (pid_ <= 0) return res;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  res.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                     signalled_.value_or(start_));
  res.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  res.out = read_file(out_path_);
  res.err = read_file(err_path_);
  return res;
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    ::usleep(20'000);
  }
  return cond();
}

}  // namespace sandrun::testing
