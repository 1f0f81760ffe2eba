// Query strings and Docker's filters.
#include "runner/api/query.h"

#include <charconv>

#include <nlohmann/json.hpp>

namespace sandrun::runner::api {
namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

Query Query::parse(std::string_view raw) {
  Query q;
  size_t i = 0;
  while (i < raw.size()) {
    size_t amp = raw.find('&', i);
    if (amp == std::string_view::npos) amp = raw.size();
    const std::string_view part = raw.substr(i, amp - i);
    if (!part.empty()) {
      const size_t eq = part.find('=');
      if (eq == std::string_view::npos) q.params_.emplace(decode(part), "");
      else q.params_.emplace(decode(part.substr(0, eq)), decode(part.substr(eq + 1)));
    }
    i = amp + 1;
  }
  return q;
}

std::optional<std::string> Query::get(std::string_view name) const {
  auto it = params_.find(name);
  if (it == params_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Query::all(std::string_view name) const {
  std::vector<std::string> out;
  auto [b, e] = params_.equal_range(name);
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

bool Query::flag(std::string_view name, bool fallback) const {
  const auto v = get(name);
  if (!v) return fallback;
  return *v == "1" || *v == "true" || *v == "True" || *v == "TRUE";
}

Result<long long> Query::integer(std::string_view name, long long fallback) const {
  const auto v = get(name);
  if (!v || v->empty()) return fallback;
  long long n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc{} || p != v->data() + v->size())
    return Error::msg("invalid value for {}: {:?} is not an integer", name, *v);
  return n;
}

Result<Filters> parse_filters(const Query& query, const std::vector<std::string_view>& allowed) {
  Filters out;
  const auto raw = query.get("filters");
  if (!raw || raw->empty()) return out;
  const auto doc = nlohmann::json::parse(*raw, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return Error::msg("invalid filter: the filters parameter is not a JSON object");
  for (const auto& [key, value] : doc.items()) {
    if (!allowed.empty()) {
      bool ok = false;
      for (auto a : allowed) ok = ok || a == key;
      if (!ok) return Error::msg("invalid filter '{}'", key);
    }
    auto& values = out[key];
    if (value.is_array()) {
      for (const auto& v : value) {
        if (!v.is_string()) return Error::msg("invalid filter '{}': its values must be strings", key);
        values.push_back(v.get<std::string>());
      }
    } else if (value.is_object()) {  // the older form: {"value": true}
      for (const auto& [v, on] : value.items()) {
        if (on.is_boolean() && on.get<bool>()) values.push_back(v);
      }
    } else {
      return Error::msg("invalid filter '{}': its values must be a list of strings", key);
    }
  }
  return out;
}

bool labels_match(const std::vector<std::string>& wanted, const std::map<std::string, std::string>& labels) {
  for (const std::string& w : wanted) {
    const size_t eq = w.find('=');
    const std::string key = w.substr(0, eq);
    auto it = labels.find(key);
    if (it == labels.end()) return false;
    if (eq != std::string::npos && it->second != w.substr(eq + 1)) return false;
  }
  return true;
}

}  // namespace sandrun::runner::api
