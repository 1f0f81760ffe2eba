// Registry credentials (Docker's config.json) and WWW-Authenticate challenges.
#include "cache/registry_auth.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "sandbox/sys/unique_fd.h"

namespace sandrun::cache {

namespace {

using Json = nlohmann::json;

// "https://HOST/v1/" -> "HOST": the forms docker login has written over the years.
std::string_view key_host(std::string_view key) {
  for (std::string_view scheme : {"https://", "http://"}) {
    if (key.substr(0, scheme.size()) == scheme) {
      key.remove_prefix(scheme.size());
      break;
    }
  }
  return key.substr(0, key.find('/'));
}

Result<std::string> read_small_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return Error::sys("open {}", path);
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys("read {}", path);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    // A credentials file is a few KiB; a huge one is not a config.json.
    if (out.size() > (8u << 20)) return Error::msg("{}: larger than 8 MiB", path);
  }
}

std::string string_field(const Json& obj, const char* name) {
  auto it = obj.find(name);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// One "auths" entry: {"auth": base64("user:pass")} or {"username": .., "password": ..}.
Result<bool> read_entry(const Json& entry, Credentials& creds, std::string_view key) {
  auto bad = [&](std::string_view why) {
    return Error::msg("{}: auths entry \"{}\": {}", creds.source, key, why);
  };
  if (!entry.is_object()) return bad("not an object");
  std::string auth = string_field(entry, "auth");
  if (!auth.empty()) {
    auto decoded = base64_decode(auth);
    if (!decoded) return bad("\"auth\" is not base64");
    size_t colon = decoded->find(':');
    if (colon == std::string::npos || colon == 0) return bad("\"auth\" is not base64 of user:password");
    creds.username = decoded->substr(0, colon);
    creds.password = decoded->substr(colon + 1);
    return true;
  }
  creds.username = string_field(entry, "username");
  creds.password = string_field(entry, "password");
  return creds.present();
}

}  // namespace

std::string auth_file_path(const std::string& explicit_path, const char* registry_auth_file,
                           const char* docker_config, const char* home) {
  if (!explicit_path.empty()) return explicit_path;
  if (registry_auth_file && *registry_auth_file) return registry_auth_file;
  if (docker_config && *docker_config) return std::string(docker_config) + "/config.json";
  return std::string(home && *home ? home : "") + "/.docker/config.json";
}

std::string default_auth_file(const std::string& explicit_path) {
  return auth_file_path(explicit_path, std::getenv("REGISTRY_AUTH_FILE"),
                        std::getenv("DOCKER_CONFIG"), std::getenv("HOME"));
}

Result<Credentials> parse_credentials(std::string_view json, std::string_view host,
                                      const std::string& source) {
  Credentials creds;
  creds.source = source;
  Json doc = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return Error::msg("{}: not a JSON object (expected Docker's config.json format)", source);
  if (auto it = doc.find("credHelpers"); it != doc.end() && it->is_object()) {
    if (auto h = it->find(std::string(host)); h != it->end() && h->is_string())
      creds.helper = "docker-credential-" + h->get<std::string>();
  }
  if (auto it = doc.find("auths"); it != doc.end()) {
    if (!it->is_object()) return Error::msg("{}: \"auths\" is not an object", source);
    for (auto& [key, entry] : it->items()) {
      if (key_host(key) != host) continue;
      if (SANDRUN_TRY(read_entry(entry, creds, key))) return creds;
    }
  }
  // docker login with a credsStore leaves an empty "auths" entry: the secret is in the store.
  if (creds.helper.empty()) {
    std::string store = string_field(doc, "credsStore");
    if (!store.empty()) creds.helper = "docker-credential-" + store;
  }
  return creds;
}

Result<Credentials> load_credentials(const std::string& path, std::string_view host) {
  auto text = read_small_file(path);
  if (!text) {
    if (text.error().code() == ENOENT || text.error().code() == ENOTDIR) {
      Credentials anonymous;
      anonymous.source = path;
      return anonymous;
    }
    return std::move(text).error().wrap("registry credentials");
  }
  return parse_credentials(*text, host, path);
}

// ---- WWW-Authenticate -------------------------------------------------------------------

namespace {

bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~/").find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// A cursor over the header value.
struct Scanner {
  std::string_view s;
  size_t i = 0;
  bool done() const { return i >= s.size(); }
  char peek() const { return done() ? '\0' : s[i]; }
  void skip_space() {
    while (!done() && (s[i] == ' ' || s[i] == '\t')) ++i;
  }
  std::string_view token() {
    size_t start = i;
    while (!done() && is_tchar(s[i])) ++i;
    return s.substr(start, i - start);
  }
  // A quoted-string after its opening quote; a backslash escapes the next character.
  std::string quoted() {
    std::string out;
    while (!done() && s[i] != '"') {
      if (s[i] == '\\' && i + 1 < s.size()) ++i;
      out += s[i++];
    }
    if (!done()) ++i;  // closing quote
    return out;
  }
  // True when an auth-param ("name=") starts here, as opposed to the next challenge's scheme.
  bool at_param() const {
    Scanner look = *this;
    if (look.token().empty()) return false;
    look.skip_space();
    if (look.peek() != '=') return false;
    ++look.i;
    look.skip_space();
    return look.peek() != '=';  // "abc==" is a token68
  }
};

void parse_params(Scanner& sc, Challenge& ch) {
  for (;;) {
    sc.skip_space();
    while (sc.peek() == ',') {
      ++sc.i;
      sc.skip_space();
    }
    if (sc.done() || !sc.at_param()) return;
    std::string name = lower(sc.token());
    sc.skip_space();
    ++sc.i;  // '='
    sc.skip_space();
    if (sc.peek() == '"') {
      ++sc.i;
      ch.params[name] = sc.quoted();
    } else {
      ch.params[name] = std::string(sc.token());
    }
  }
}

}  // namespace

std::vector<Challenge> parse_challenges(std::string_view header) {
  std::vector<Challenge> out;
  Scanner sc{header};
  for (;;) {
    sc.skip_space();
    while (sc.peek() == ',' || sc.peek() == ' ') ++sc.i;
    if (sc.done()) break;
    std::string_view scheme = sc.token();
    if (scheme.empty()) break;  // junk: keep what was read
    Challenge ch;
    ch.scheme = lower(scheme);
    sc.skip_space();
    if (!sc.done() && sc.peek() != ',' && !sc.at_param()) {
      size_t start = sc.i;
      sc.token();
      while (sc.peek() == '=') ++sc.i;
      ch.params[""] = std::string(header.substr(start, sc.i - start));
    } else {
      parse_params(sc, ch);
    }
    out.push_back(std::move(ch));
  }
  return out;
}

Result<std::string> parse_token_response(std::string_view json) {
  Json doc = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Error::msg("the answer is not a JSON object");
  for (const char* key : {"token", "access_token"}) {
    std::string token = string_field(doc, key);
    if (!token.empty()) return token;
  }
  return Error::msg("the answer has no \"token\" or \"access_token\"");
}

// ---- base64 -----------------------------------------------------------------------------

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(v >> shift) & 63];
  }
  if (size_t rest = data.size() - i; rest > 0) {
    uint32_t v = uint8_t(data[i]) << 16;
    if (rest == 2) v |= uint8_t(data[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const char* p = c ? std::char_traits<char>::find(kAlphabet, 64, c) : nullptr;
    if (!p) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(p - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace sandrun::cache
