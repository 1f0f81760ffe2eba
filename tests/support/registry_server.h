// A real registry for tests: Debian's docker-registry (distribution v2.8) on 127.0.0.1, with
// its storage in a temp dir, optionally behind htpasswd or token auth and TLS; images are
// pushed to it with skopeo from OCI layouts (tests/support/oci_layout.h).
//
//   std::string why;
//   SANDRUN_REQUIRE(RegistryServer::available(&why), why);
//   std::string err;
//   auto reg = RegistryServer::start({.auth = RegistryServer::Auth::htpasswd}, &err);
//   ASSERT_TRUE(reg) << err;
//   ASSERT_EQ(reg->push(layout_dir, "v1", "team/x:1"), "");
//   // pull reg->host() + "/team/x:1" with insecure_hosts = {reg->host()}
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "sandbox/sys/unique_fd.h"
#include "tests/support/test_env.h"
#include "tests/support/token_server.h"

namespace sandrun::testing {

class RegistryServer {
 public:
  enum class Auth {
    none,      // anonymous pull and push
    htpasswd,  // Basic auth: `user` / `password` (bcrypt, as the registry requires)
    token,     // Bearer tokens from an in-process TokenServer that knows `user` / `password`
  };
  struct Options {
    Auth auth = Auth::none;
    std::string user = "sandrun";
    std::string password = "pull-secret";
    bool anonymous_pull = false;  // token auth: pull tokens without credentials too
    bool tls = false;  // HTTPS with a certificate for 127.0.0.1 from a CA made for the test
  };

  // Whether docker-registry, skopeo, htpasswd and openssl are installed; else says which not.
  static bool available(std::string* why);
  // Starts the registry and waits until it answers (up to 15 s; a port taken between choosing
  // and binding it is retried with another). nullptr and `error` (with its log) on failure.
  static std::unique_ptr<RegistryServer> start(const Options& options, std::string* error);
  // Stops exactly the process it started (SIGTERM, then SIGKILL, through its pidfd) and removes
  // its directory.
  ~RegistryServer();
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;

  // "127.0.0.1:PORT", the registry part of image references.
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const Options& options() const { return options_; }
  // The CA certificate that signed the registry's certificate (TLS only).
  std::string ca_file() const { return dir_ / "ca.crt"; }
  // The registry's storage root, and the file holding a blob's bytes in it.
  std::string storage_dir() const { return dir_ / "storage"; }
  std::string blob_data_path(const std::string& digest) const;
  // Its log, with an access log line per request ("GET /v2/team/x/blobs/sha256:... HTTP/1.1").
  std::string log() const;
  // The token server (Auth::token only).
  const TokenServer* token_server() const { return token_.get(); }

  // `skopeo copy oci:OCI_DIR:OCI_TAG docker://HOST/DEST` (`--all` for an index), with the
  // account's credentials when auth is on. "" on success, else skopeo's output.
  std::string push(const std::string& oci_dir, const std::string& oci_tag, const std::string& dest,
                   bool all = false) const;

 private:
  explicit RegistryServer(const Options& options) : options_(options) {}
  std::string prepare();  // certificates, htpasswd, token server; "" or the error
  std::string write_config(int port) const;
  std::string launch();   // "" or the error
  bool wait_ready(std::string* error);
  void stop();

  Options options_;
  TempDir dir_;
  std::unique_ptr<TokenServer> token_;
  int port_ = 0;
  pid_t pid_ = -1;
  UniqueFd pidfd_;
};

}  // namespace sandrun::testing
