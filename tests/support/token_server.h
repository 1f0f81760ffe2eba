// A registry token server for tests (the Docker token auth protocol): checks Basic credentials
// and answers {"token": JWT} signed RS256 by a key whose certificate the registry trusts.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/http_fixture.h"

namespace sandrun::testing {

class TokenServer {
 public:
  struct Options {
    std::string service = "sandrun-test-registry";
    std::string issuer = "sandrun-test-issuer";
    std::string user, password;  // the one account; empty user: no account
    bool anonymous_pull = false;  // tokens with pull access for requests without credentials
  };
  // Makes its signing key and certificate under `dir` (with the openssl command) and listens
  // on 127.0.0.1. Throws std::runtime_error when openssl fails.
  TokenServer(const std::string& dir, Options options);
  ~TokenServer();

  std::string realm() const { return http_->url("/token"); }
  const std::string& service() const { return options_.service; }
  const std::string& issuer() const { return options_.issuer; }
  // The certificate of the signing key: the registry's auth.token.rootcertbundle.
  const std::string& cert_file() const { return cert_file_; }
  // Requests seen so far, and tokens handed out.
  std::vector<HttpExchange> requests() const { return http_->requests(); }
  int tokens_issued() const { return issued_.load(); }

 private:
  HttpReply handle(const HttpExchange& ex);
  std::string sign(const std::string& claims) const;

  Options options_;
  std::string cert_file_;
  std::string key_pem_;
  std::string cert_der_b64_;
  std::atomic<int> issued_{0};
  std::unique_ptr<HttpFixture> http_;  // last: stops serving before the rest goes
};

}  // namespace sandrun::testing
