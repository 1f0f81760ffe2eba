// A token server for tests: Basic credentials in, an RS256 JWT (x5c header) out.
#include "tests/support/token_server.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "cache/registry_auth.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {

namespace {

using Json = nlohmann::json;

std::string base64url(const std::string& data) {
  std::string s = cache::base64_encode(data);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return s;
}

std::string url_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// The values of `name` in the target's query ("scope" may come several times).
std::vector<std::string> query_values(const std::string& target, const std::string& name) {
  std::vector<std::string> out;
  size_t q = target.find('?');
  if (q == std::string::npos) return out;
  std::string query = target.substr(q + 1);
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string pair = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    size_t eq = pair.find('=');
    if (eq != std::string::npos && pair.substr(0, eq) == name) out.push_back(url_decode(pair.substr(eq + 1)));
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return out;
}

HttpReply unauthorized(const std::string& why) {
  HttpReply r;
  r.status = 401;
  r.reason = "Unauthorized";
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = Json{{"errors", {{{"code", "UNAUTHORIZED"}, {"message", why}}}}}.dump();
  return r;
}

}  // namespace

TokenServer::TokenServer(const std::string& dir, Options options) : options_(std::move(options)) {
  cert_file_ = dir + "/token.crt";
  std::string key_file = dir + "/token.key";
  CommandResult r = run_command({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                                 "2", "-subj", "/CN=sandrun-test-token-signer", "-keyout", key_file,
                                 "-out", cert_file_});
  if (r.status != 0) throw std::runtime_error("openssl req (token signing key) failed: " + r.err);
  key_pem_ = read_file(key_file);
  std::string cert_pem = read_file(cert_file_);
  BIO* bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!cert) throw std::runtime_error("cannot read " + cert_file_);
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  cert_der_b64_ = cache::base64_encode(std::string(reinterpret_cast<char*>(der), static_cast<size_t>(len)));
  OPENSSL_free(der);
  X509_free(cert);
  http_ = std::make_unique<HttpFixture>([this](const HttpExchange& ex) { return handle(ex); });
}

TokenServer::~TokenServer() { http_.reset(); }

std::string TokenServer::sign(const std::string& signing_input) const {
  BIO* bio = BIO_new_mem_buf(key_pem_.data(), static_cast<int>(key_pem_.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string sig;
  if (key && ctx && EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) == 1) {
    sig.resize(len);
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1)
      sig.clear();
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return sig;
}

HttpReply TokenServer::handle(const HttpExchange& ex) {
  std::string auth = ex.header("authorization");
  bool logged_in = false;
  if (!auth.empty()) {
    auto decoded = auth.rfind("Basic ", 0) == 0 ? cache::base64_decode(auth.substr(6)) : std::nullopt;
    if (options_.user.empty() || !decoded || *decoded != options_.user + ":" + options_.password)
      return unauthorized("invalid username or password");
    logged_in = true;
  } else if (!options_.anonymous_pull) {
    return unauthorized("authentication required");
  }
  Json access = Json::array();
  for (const std::string& scope : query_values(ex.target, "scope")) {
    // repository:NAME:ACTIONS; a name may not contain ':' (a registry port is not part of it).
    size_t a = scope.find(':'), b = scope.rfind(':');
    if (a == std::string::npos || a == b) continue;
    Json actions = Json::array();
    std::string list = scope.substr(b + 1);
    for (const char* action : {"pull", "push"})
      if (list.find(action) != std::string::npos && (logged_in || std::string(action) == "pull"))
        actions.push_back(action);
    access.push_back({{"type", scope.substr(0, a)}, {"name", scope.substr(a + 1, b - a - 1)}, {"actions", actions}});
  }
  long now = static_cast<long>(std::time(nullptr));
  Json header{{"typ", "JWT"}, {"alg", "RS256"}, {"x5c", {cert_der_b64_}}};
  Json claims{{"iss", options_.issuer}, {"sub", logged_in ? options_.user : ""}, {"aud", options_.service},
              {"exp", now + 300}, {"nbf", now - 10}, {"iat", now},
              {"jti", std::to_string(now) + "-" + std::to_string(issued_.load())}, {"access", access}};
  std::string input = base64url(header.dump()) + "." + base64url(claims.dump());
  std::string sig = sign(input);
  if (sig.empty()) return HttpReply{500, "Internal Server Error", {}, "signing failed"};
  ++issued_;
  HttpReply r;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = Json{{"token", input + "." + base64url(sig)}, {"expires_in", 300}}.dump();
  return r;
}

}  // namespace sandrun::testing
