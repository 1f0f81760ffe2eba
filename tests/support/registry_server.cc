// docker-registry started for a test, and images pushed to it with skopeo.
#include "tests/support/registry_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "sandbox/sys/syscalls.h"

extern char** environ;

namespace sandrun::testing {

namespace {

bool in_path(const std::string& name) {
  return run_command({"sh", "-c", "command -v " + name}).status == 0;
}

// A port that was free a moment ago (the registry binds it itself: a race, retried by start).
int free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) < 0)
    return -1;
  return ntohs(addr.sin_port);
}

// Connects to 127.0.0.1:port; with `http`, also asks GET /v2/ and wants an HTTP answer.
bool answers(int port, bool http) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return false;
  if (!http) return true;
  const char req[] = "GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd.get(), req, sizeof req - 1, MSG_NOSIGNAL) < 0) return false;
  struct pollfd p = {fd.get(), POLLIN, 0};
  char buf[16] = {};
  return ::poll(&p, 1, 2000) == 1 && ::read(fd.get(), buf, sizeof buf - 1) > 0 &&
         std::strncmp(buf, "HTTP/1.", 7) == 0;
}

std::string run_checked(const std::vector<std::string>& argv) {
  CommandResult r = run_command(argv);
  return r.status == 0 ? "" : argv[0] + " failed: " + r.err + r.out;
}

}  // namespace

bool RegistryServer::available(std::string* why) {
  for (const char* tool : {"docker-registry", "skopeo", "htpasswd", "openssl"}) {
    if (!in_path(tool)) {
      *why = std::string(tool) + " is not installed (ci/install-deps.sh installs it)";
      return false;
    }
  }
  return true;
}

std::unique_ptr<RegistryServer> RegistryServer::start(const Options& options, std::string* error) {
  std::unique_ptr<RegistryServer> reg(new RegistryServer(options));
  if (*error = reg->prepare(); !error->empty()) return nullptr;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (*error = reg->launch(); !error->empty()) return nullptr;
    if (reg->wait_ready(error)) return reg;
    bool bind_race = reg->log().find("address already in use") != std::string::npos;
    reg->stop();
    if (!bind_race) return nullptr;
  }
  return nullptr;
}

RegistryServer::~RegistryServer() { stop(); }

std::string RegistryServer::prepare() {
  ::mkdir(storage_dir().c_str(), 0755);
  if (options_.tls) {
    // A CA, and a certificate for 127.0.0.1 it signs: clients trust the CA via their CA file.
    write_file(dir_ / "san.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    std::vector<std::vector<std::string>> steps = {
        {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=sandrun-test-ca", "-keyout", dir_ / "ca.key", "-out", ca_file()},
        {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-subj", "/CN=127.0.0.1", "-keyout", dir_ / "server.key", "-out", dir_ / "server.csr"},
        {"openssl", "x509", "-req", "-in", dir_ / "server.csr", "-CA", ca_file(), "-CAkey",
         dir_ / "ca.key", "-set_serial", "2", "-days", "2", "-extfile", dir_ / "san.ext", "-out",
         dir_ / "server.crt"}};
    for (auto& argv : steps)
      if (std::string err = run_checked(argv); !err.empty()) return err;
  }
  if (options_.auth == Auth::htpasswd) {
    CommandResult r = run_command({"htpasswd", "-Bbn", options_.user, options_.password});
    if (r.status != 0) return "htpasswd failed: " + r.err;
    write_file(dir_ / "htpasswd", r.out);
  }
  if (options_.auth == Auth::token) {
    TokenServer::Options t;
    t.user = options_.user;
    t.password = options_.password;
    t.anonymous_pull = options_.anonymous_pull;
    try {
      token_ = std::make_unique<TokenServer>(dir_.path(), t);
    } catch (const std::exception& e) {
      return e.what();
    }
  }
  return "";
}

std::string RegistryServer::write_config(int port) const {
  std::string cfg =
      "version: 0.1\n"
      // The access log ("GET /v2/NAME/blobs/..." lines) lets tests count what was downloaded.
      "log:\n  level: info\n  accesslog:\n    disabled: false\n"
      "storage:\n  filesystem:\n    rootdirectory: " + storage_dir() + "\n"
      "  delete:\n    enabled: true\n"
      "http:\n  addr: 127.0.0.1:" + std::to_string(port) + "\n  secret: sandrun-test\n";
  if (options_.tls)
    cfg += "  tls:\n    certificate: " + dir_ / "server.crt" + "\n    key: " + dir_ / "server.key" + "\n";
  if (options_.auth == Auth::htpasswd)
    cfg += "auth:\n  htpasswd:\n    realm: sandrun-test\n    path: " + dir_ / "htpasswd" + "\n";
  if (options_.auth == Auth::token)
    cfg += "auth:\n  token:\n    realm: " + token_->realm() + "\n    service: " + token_->service() +
           "\n    issuer: " + token_->issuer() + "\n    rootcertbundle: " + token_->cert_file() + "\n";
  std::string path = dir_ / "config.yml";
  write_file(path, cfg);
  return path;
}

std::string RegistryServer::launch() {
  port_ = free_port();
  if (port_ < 0) return "no free port on 127.0.0.1";
  std::string config = write_config(port_);
  std::string log_path = dir_ / "registry.log";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  // Through setpriv, which execs it with PR_SET_PDEATHSIG: a test that dies (a crash, SIGKILL,
  // a closed pipe) takes its registry with it instead of leaving it running.
  std::string setpriv = "setpriv", pdeathsig = "--pdeathsig", sig = "KILL", dashes = "--";
  std::string prog = "docker-registry", serve = "serve";
  char* argv[] = {setpriv.data(), pdeathsig.data(), sig.data(), dashes.data(), prog.data(), serve.data(), config.data(), nullptr};
  int rc = posix_spawnp(&pid_, "setpriv", &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    pid_ = -1;
    return std::string("cannot start docker-registry: ") + std::strerror(rc);
  }
  // Our unreaped child: its pid cannot be reused before we wait for it, so this is its pidfd.
  pidfd_.reset(sys::pidfd_open(pid_));
  if (!pidfd_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return std::string("pidfd_open: ") + std::strerror(errno);
  }
  return "";
}

bool RegistryServer::wait_ready(std::string* error) {
  std::string listening = "listening on " + host();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    struct pollfd p = {pidfd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) == 1) {
      *error = "docker-registry exited at start:\n" + log();
      return false;
    }
    // The log line first: another process may have the port (then the registry exits).
    if (log().find(listening) != std::string::npos && answers(port_, !options_.tls)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  *error = "docker-registry did not answer within 15 s:\n" + log();
  return false;
}

void RegistryServer::stop() {
  if (pid_ < 0) return;
  sys::pidfd_send_signal(pidfd_.get(), SIGTERM);
  struct pollfd p = {pidfd_.get(), POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
  siginfo_t info = {};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED) < 0 &&
         errno == EINTR) {
  }
  pidfd_.reset();
  pid_ = -1;
}

std::string RegistryServer::log() const { return read_file(dir_ / "registry.log"); }

std::string RegistryServer::blob_data_path(const std::string& digest) const {
  std::string hex = digest.substr(digest.find(':') + 1);
  return storage_dir() + "/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
}

std::string RegistryServer::push(const std::string& oci_dir, const std::string& oci_tag,
                                 const std::string& dest, bool all) const {
  // --insecure-policy: signature policy is not what these tests are about, and the host's
  // /etc/containers/policy.json may not exist. TLS is not verified: the push is set-up only.
  // --preserve-digests: skopeo would otherwise compress uncompressed layers (and so rewrite the
  // manifest) on the way to a registry; the tests want the bytes they wrote.
  std::vector<std::string> argv = {"skopeo", "--insecure-policy", "copy", "--preserve-digests",
                                   "--dest-tls-verify=false"};
  if (all) argv.push_back("--all");
  if (options_.auth != Auth::none) argv.push_back("--dest-creds=" + options_.user + ":" + options_.password);
  argv.push_back("oci:" + oci_dir + ":" + oci_tag);
  argv.push_back("docker://" + host() + "/" + dest);
  CommandResult r = run_command(argv);
  return r.status == 0 ? "" : "skopeo copy failed (" + std::to_string(r.status) + "): " + r.err + r.out;
}

}  // namespace sandrun::testing
