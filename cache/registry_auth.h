// Registry credentials from a Docker config.json, and the WWW-Authenticate challenges of
// registries and their token servers (pure functions besides the file read).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sys/result.h"

namespace sandrun::cache {

// What the credentials file says about one registry host.
struct Credentials {
  std::string username;  // empty: none for this host (anonymous)
  std::string password;
  std::string source;    // the file looked at (also when it does not exist)
  // A credential helper ("credHelpers" entry, or "credsStore" when "auths" has no usable entry)
  // the file names for this host. sandrun runs no helpers; this is reported only when the
  // registry asks for credentials.
  std::string helper;
  bool present() const { return !username.empty(); }
};

// The credentials file: `explicit_path` when given, else $REGISTRY_AUTH_FILE, else
// $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json. Environment values may be null.
std::string auth_file_path(const std::string& explicit_path, const char* registry_auth_file,
                           const char* docker_config, const char* home);
// auth_file_path() with this process's environment.
std::string default_auth_file(const std::string& explicit_path);

// The entry for `host` ("127.0.0.1:5000") in a config.json's text. Keys match as "HOST",
// "https://HOST", "http://HOST" or with a path ("https://HOST/v1/"); the port must match
// exactly. An entry has "auth" (base64 of "user:password") or "username" and "password".
// Malformed JSON or entries are errors naming `source`.
Result<Credentials> parse_credentials(std::string_view json, std::string_view host,
                                      const std::string& source);
// Reads `path`: a missing file means anonymous, an unreadable or malformed one is an error.
Result<Credentials> load_credentials(const std::string& path, std::string_view host);

// One challenge of a WWW-Authenticate header: scheme lowercased ("basic", "bearer"), parameter
// names lowercased, values unquoted. A token68 form ("Negotiate abc==") is kept under "".
struct Challenge {
  std::string scheme;
  std::map<std::string, std::string> params;
  std::string param(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  }
};
// All challenges of a header value such as
//   Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"
// (several challenges and parameters, comma-separated; quoted values with \ escapes).
// Junk yields what could be read before it.
std::vector<Challenge> parse_challenges(std::string_view header);

// The "token" (or else "access_token") of a token server's JSON answer.
Result<std::string> parse_token_response(std::string_view json);

std::string base64_encode(std::string_view data);
// Standard alphabet, padding optional; nullopt on any other character.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace sandrun::cache
