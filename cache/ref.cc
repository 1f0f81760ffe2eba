// Image references: "busybox" -> busybox:latest, "team/builder:1.4", "host:5000/team/x:1".
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "cache/entry_path.h"
#include "cache/store.h"

namespace sandrun::cache {

namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

// A path component: lowercase letters, digits and . _ -, starting and ending alphanumeric.
bool valid_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  for (char ch : c)
    if (!is_lower_alnum(ch) && ch != '.' && ch != '_' && ch != '-') return false;
  return true;
}

// A registry host as the first component: "localhost", "127.0.0.1:5000", "ghcr.io".
bool looks_like_host(std::string_view c) {
  return c == "localhost" || c.find('.') != std::string_view::npos ||
         c.find(':') != std::string_view::npos;
}

bool valid_host(std::string_view c) {
  size_t colon = c.find(':');
  std::string_view host = c.substr(0, colon);
  if (host.empty() || host.front() == '-' || host.front() == '.') return false;
  for (char ch : host)
    if (!is_alnum(ch) && ch != '.' && ch != '-') return false;
  if (colon == std::string_view::npos) return true;
  std::string_view port = c.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  for (char ch : port)
    if (ch < '0' || ch > '9') return false;
  return true;
}

// [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, as docker's tag grammar.
bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128 || t.front() == '.' || t.front() == '-') return false;
  for (char ch : t)
    if (!is_alnum(ch) && ch != '_' && ch != '.' && ch != '-') return false;
  return true;
}

Result<void> check_name(std::string_view name) {
  if (name.empty()) return Error::msg("empty name");
  if (name.size() > 255) return Error::msg("name longer than 255 characters");
  size_t pos = 0;
  bool first = true;
  while (pos <= name.size()) {
    size_t end = name.find('/', pos);
    if (end == std::string_view::npos) end = name.size();
    std::string_view comp = name.substr(pos, end - pos);
    bool host = first && end < name.size() && looks_like_host(comp);
    if (host && !valid_host(comp)) return Error::msg("invalid registry host {}", quoted(comp));
    if (!host && !valid_component(comp))
      return Error::msg(
          "name component {} must be lowercase letters, digits and . _ - (starting and ending "
          "with a letter or digit)",
          quoted(comp));
    first = false;
    pos = end + 1;
  }
  return {};
}

// "sha256:" and 64 lowercase hex digits.
bool valid_sha256_digest(std::string_view d) {
  if (d.size() != 71 || d.substr(0, 7) != "sha256:") return false;
  for (char ch : d.substr(7))
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  return true;
}

}  // namespace

std::string ImageRef::registry() const {
  size_t slash = name.find('/');
  if (slash == std::string::npos) return "";
  std::string_view first = std::string_view(name).substr(0, slash);
  return looks_like_host(first) ? std::string(first) : "";
}

std::string ImageRef::repository() const {
  std::string host = registry();
  return host.empty() ? name : name.substr(host.size() + 1);
}

Result<ImageRef> parse_ref(std::string_view text) {
  auto fail = [&](Error e) { return std::move(e.wrap(fmt::format("invalid image reference {}",
                                                                 quoted(text)))); };
  if (size_t at = text.find('@'); at != std::string_view::npos) {
    // name@sha256:<hex>: a manifest by digest (no tag, as Docker refuses name:tag@digest too).
    ImageRef ref;
    ref.name = std::string(text.substr(0, at));
    ref.digest = std::string(text.substr(at + 1));
    if (!valid_sha256_digest(ref.digest))
      return fail(Error::msg("digest {} must be sha256: and 64 lowercase hex digits", quoted(ref.digest)));
    size_t slash = ref.name.rfind('/'), colon = ref.name.rfind(':');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
      return fail(Error::msg("a reference has a tag or a digest, not both"));
    if (auto r = check_name(ref.name); !r) return fail(std::move(r).error());
    return ref;
  }
  ImageRef ref;
  // A ':' before the last '/' belongs to a registry port, not to a tag.
  size_t slash = text.rfind('/');
  size_t colon = text.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.name = std::string(text.substr(0, colon));
    ref.tag = std::string(text.substr(colon + 1));
    if (!valid_tag(ref.tag))
      return fail(Error::msg("tag {} must be 1 to 128 letters, digits and _ . - (not starting "
                             "with . or -)", quoted(ref.tag)));
  } else {
    ref.name = std::string(text);
    ref.tag = "latest";
  }
  if (auto r = check_name(ref.name); !r) return fail(std::move(r).error());
  return ref;
}

}  // namespace sandrun::cache
