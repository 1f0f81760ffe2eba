// A request's query string as Docker's handlers read it: parameters by name, Docker's booleans
// ("1", "true", "True"), and the JSON `filters` parameter in both of its forms.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sys/result.h"

namespace sandrun::runner::api {

class Query {
 public:
  // Splits "a=1&b=x%20y&a=2" (percent- and '+'-decoded). A bad escape is kept as written.
  static Query parse(std::string_view raw);

  bool has(std::string_view name) const { return params_.find(name) != params_.end(); }
  // The first value of `name`, or nullopt.
  std::optional<std::string> get(std::string_view name) const;
  // Every value of `name`, in order.
  std::vector<std::string> all(std::string_view name) const;
  // Docker's boolean: "1", "true", "True", "TRUE" are true; anything else (and absent) is
  // `fallback` when absent, false when present.
  bool flag(std::string_view name, bool fallback = false) const;
  // An integer parameter; absent: `fallback`; not an integer: an error naming it.
  Result<long long> integer(std::string_view name, long long fallback) const;

 private:
  std::multimap<std::string, std::string, std::less<>> params_;
};

// Docker's `filters`: {"label":["a=b"],"status":["running"]} or the older
// {"label":{"a=b":true}}. As Docker: every key applies; the values of one key are alternatives
// (any matches), except `label`'s, which all apply (labels_match).
using Filters = std::map<std::string, std::vector<std::string>, std::less<>>;
// Parses the `filters` parameter (absent or empty: no filters). Bad JSON, or a key outside
// `allowed` (when not empty), is an error whose message is Docker's ("invalid filter 'x'").
Result<Filters> parse_filters(const Query& query, const std::vector<std::string_view>& allowed = {});

// "key=value" label filters against a container's or object's labels: "key" matches any value.
bool labels_match(const std::vector<std::string>& wanted, const std::map<std::string, std::string>& labels);

}  // namespace sandrun::runner::api
