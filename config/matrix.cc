// The matrix key of a job: its axes, exclude and include entries, as written and checked.
#include <algorithm>

#include <fmt/ranges.h>

#include "config/expand.h"
#include "config/key_ctx.h"
#include "sandbox/sys/text.h"

namespace sandrun::config::detail {

namespace {

// Errors of one matrix: "jobs.toml:3:10: jobs.unit.matrix.cc[1]: <text>".
struct MatrixCtx {
  const Scope& scope;
  std::string path;  // jobs.unit.matrix

  Error at(const toml::source_region& where, std::string_view suffix, std::string_view text) const {
    return Error::msg("{}: {}{}: {}", pos_of(where, scope.file).str(), path, suffix, text);
  }
};

// Matrix keys appear in ${{ matrix.KEY }} and in MATRIX_KEY: TOML's bare key characters only.
bool valid_key(std::string_view key) {
  if (key.empty()) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

Result<std::string> value_text(const toml::node& n, const MatrixCtx& m, std::string_view suffix) {
  auto text = scalar_text(n);
  if (!text) return m.at(n.source(), suffix, text.error().message());
  if (has_nul(*text)) return m.at(n.source(), suffix, "must not contain a NUL character");
  // Each value is part of the job's name, shown on the console and in reports.
  if (const size_t at = find_control(*text); at != std::string::npos)
    return m.at(n.source(), suffix,
                fmt::format("\"{}\" must not contain control characters (\"{}\" at byte {}): the value is part of the "
                            "job's name", terminal_safe(*text), terminal_safe(std::string_view(*text).substr(at, 1)), at));
  return text.take();
}

Result<std::vector<std::string>> parse_axis(const toml::key& key, const toml::node& n,
                                            const MatrixCtx& m) {
  std::string suffix = "." + key_text(key.str());
  if (!valid_key(key.str())) {
    return m.at(key.source(), "", fmt::format("invalid matrix key \"{}\": use letters, digits, '_' and '-'",
                                              key.str()));
  }
  const auto* arr = n.as_array();
  if (!arr) {
    return m.at(n.source(), suffix, fmt::format("expected an array of values like [\"gcc\", \"clang\"], got {}",
                                                type_name(n)));
  }
  if (arr->empty()) return m.at(n.source(), suffix, "is empty; list at least one value");
  std::vector<std::string> values;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& el = *arr->get(i);
    std::string index = fmt::format("{}[{}]", suffix, i);
    auto text = SANDRUN_TRY(value_text(el, m, index));
    auto dup = std::find(values.begin(), values.end(), text);
    if (dup != values.end()) {
      return m.at(el.source(), index, fmt::format("\"{}\" is already listed in {}[{}]", text,
                                                  key.str(), dup - values.begin()));
    }
    values.push_back(std::move(text));
  }
  return values;
}

std::vector<std::string_view> axis_names(const Matrix& matrix) {
  std::vector<std::string_view> names;
  for (const auto& [key, values] : matrix.axes) names.push_back(key);
  return names;
}

// An exclude entry names axis keys and their values only: a typo would exclude nothing.
Result<void> check_exclude_key(const toml::key& key, const std::string& value, const Matrix& matrix,
                               const MatrixCtx& m, std::string_view suffix) {
  auto names = axis_names(matrix);
  auto axis = std::find_if(matrix.axes.begin(), matrix.axes.end(),
                           [&](const auto& a) { return a.first == key.str(); });
  if (axis == matrix.axes.end()) {
    std::string_view best = closest(key.str(), names);
    std::string hint = best.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", best);
    return m.at(key.source(), suffix, fmt::format("unknown matrix key \"{}\"{}; the matrix has: {}",
                                                  key.str(), hint, fmt::join(names, ", ")));
  }
  const auto& values = axis->second;
  if (std::find(values.begin(), values.end(), value) == values.end()) {
    std::vector<std::string_view> candidates(values.begin(), values.end());
    std::string_view best = closest(value, candidates);
    std::string hint = best.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", best);
    return m.at(key.source(), fmt::format("{}.{}", suffix, key_text(key.str())),
                fmt::format("\"{}\" is not a value of {}{}; its values are: {}", value, key.str(), hint,
                            fmt::join(values, ", ")));
  }
  return {};
}

Result<MatrixEntry> parse_entry(const toml::node& n, const Matrix& matrix, const MatrixCtx& m,
                                std::string_view suffix, bool exclude) {
  const auto* table = n.as_table();
  if (!table) {
    return m.at(n.source(), suffix, fmt::format("expected a table like {{ cc = \"clang\" }}, got {}",
                                                type_name(n)));
  }
  if (table->empty()) return m.at(n.source(), suffix, "is empty");
  MatrixEntry entry{{}, pos_of(n.source(), m.scope.file)};
  for (auto [key, value] : in_file_order(*table)) {
    std::string key_suffix = fmt::format("{}.{}", suffix, key_text(key->str()));
    if (!valid_key(key->str())) {
      return m.at(key->source(), suffix,
                  fmt::format("invalid matrix key \"{}\": use letters, digits, '_' and '-'", key->str()));
    }
    auto text = SANDRUN_TRY(value_text(*value, m, key_suffix));
    if (exclude) SANDRUN_TRY(check_exclude_key(*key, text, matrix, m, suffix));
    entry.values.emplace_back(key->str(), std::move(text));
  }
  return entry;
}

Result<std::vector<MatrixEntry>> parse_entries(const toml::key& key, const toml::node& n,
                                               const Matrix& matrix, const MatrixCtx& m) {
  const auto* arr = n.as_array();
  std::string suffix = "." + std::string(key.str());
  if (!arr) {
    return m.at(n.source(), suffix, fmt::format("expected an array of tables like [{{ cc = \"clang\" }}], got {}",
                                                type_name(n)));
  }
  std::vector<MatrixEntry> entries;
  for (size_t i = 0; i < arr->size(); ++i) {
    std::string index = fmt::format("{}[{}]", suffix, i);
    entries.push_back(SANDRUN_TRY(parse_entry(*arr->get(i), matrix, m, index, key.str() == "exclude")));
  }
  return entries;
}

// "cc" and "CC" would both set MATRIX_CC.
Result<void> check_env_names(const Matrix& matrix, const MatrixCtx& m) {
  std::vector<std::string> keys;
  for (const auto& [key, values] : matrix.axes) keys.push_back(key);
  for (const MatrixEntry& e : matrix.include) {
    for (const auto& [key, value] : e.values) keys.push_back(key);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (keys[i] != keys[j] && matrix_env_name(keys[i]) == matrix_env_name(keys[j])) {
        return Error::msg("{}: {}: keys \"{}\" and \"{}\" would both set {}", matrix.pos.str(), m.path,
                          keys[j], keys[i], matrix_env_name(keys[i]));
      }
    }
  }
  return {};
}

}  // namespace

// Axes first, whatever the order written: exclude entries are checked against them.
Result<Matrix> parse_matrix(const toml::node& value, const Scope& scope) {
  MatrixCtx m{scope, scope.path + ".matrix"};
  const auto* table = value.as_table();
  if (!table) {
    return m.at(value.source(), "", fmt::format("expected a table like {{ cc = [\"gcc\", \"clang\"] }}, got {}",
                                                type_name(value)));
  }
  Matrix matrix{pos_of(value.source(), scope.file), m.path, {}, {}, {}};
  auto entries = in_file_order(*table);
  for (auto [key, node] : entries) {
    if (key->str() == "exclude" || key->str() == "include") continue;
    matrix.axes.emplace_back(key->str(), SANDRUN_TRY(parse_axis(*key, *node, m)));
  }
  for (auto [key, node] : entries) {
    if (key->str() == "exclude") matrix.exclude = SANDRUN_TRY(parse_entries(*key, *node, matrix, m));
    if (key->str() == "include") matrix.include = SANDRUN_TRY(parse_entries(*key, *node, matrix, m));
  }
  SANDRUN_TRY(check_env_names(matrix, m));
  if (matrix.axes.empty() && matrix.include.empty()) {
    return m.at(value.source(), "", "is empty; expected keys with lists of values like { cc = [\"gcc\", \"clang\"] }");
  }
  return matrix;
}

}  // namespace sandrun::config::detail
