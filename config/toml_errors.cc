// toml++ syntax errors as sandrun Errors, and the "duplicate job" rewrite of table redefinitions.
#include <optional>
#include <tuple>

#include "config/toml_read.h"

namespace sandrun::config::detail {

namespace {

using Path = std::vector<std::string>;

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos <= text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = end + 1;
  }
  return lines;
}

std::optional<toml::table> try_parse(std::string_view text) {
  try {
    return toml::parse(text);
  } catch (const toml::parse_error&) {
    return std::nullopt;
  }
}

// The key path a single line defines: ["jobs", "unit"] for `[jobs.unit]`, ["unit"] for
// `unit = { ... }`, ["unit", "run"] for `unit.run = "x"`. Parsing the line on its own lets
// toml++ deal with quoting ([jobs."a.b"]).
std::optional<Path> defined_path(std::string_view line, bool header) {
  auto doc = try_parse(line);
  if (!doc && !header && line.find('=') != std::string_view::npos) {
    // The value may be the start of a multi-line string or array: the key is what matters.
    doc = try_parse(std::string(line.substr(0, line.find('='))) + "= 0");
  }
  if (!doc) return std::nullopt;
  Path path;
  const toml::table* t = &*doc;
  while (t && t->size() == 1) {
    auto [key, value] = *t->begin();  // a proxy of references, by value
    path.push_back(std::string(key.str()));
    t = value.as_table();
    if (t && t->is_inline()) break;
  }
  return path;
}

bool starts_header(const toml::node& n, const std::vector<std::string_view>& lines) {
  auto at = n.source().begin;
  if (at.line == 0 || at.line > lines.size()) return false;
  std::string_view line = lines[at.line - 1];
  return at.column >= 1 && at.column <= line.size() && line[at.column - 1] == '[';
}

// The table a [header] opened last in `doc`: where a key-value line after it lands.
struct Current {
  toml::source_position at{};
  Path path;
  bool in_array = false;  // inside [[x]]: the path alone cannot name it
};

void find_current(const toml::table& t, Path& path, bool in_array,
                  const std::vector<std::string_view>& lines, Current& best) {
  auto consider = [&](const toml::table& sub, bool arr) {
    if (sub.is_inline()) return;
    if (starts_header(sub, lines)) {
      auto at = sub.source().begin;
      auto key = std::tuple(at.line, at.column, path.size());
      if (key > std::tuple(best.at.line, best.at.column, best.path.size())) {
        best = Current{at, path, arr};
      }
    }
    find_current(sub, path, arr, lines, best);
  };
  for (auto&& [key, value] : t) {
    path.push_back(std::string(key.str()));
    if (const auto* sub = value.as_table()) {
      consider(*sub, in_array);
    } else if (const auto* arr = value.as_array()) {
      for (const auto& el : *arr) {
        if (const auto* sub = el.as_table()) consider(*sub, true);
      }
    }
    path.pop_back();
  }
}

// Whether `line` (1-based) defines the table jobs.NAME a second time, and if so NAME.
std::optional<std::string> redefined_job(std::string_view text, size_t line) {
  auto lines = split_lines(text);
  if (line == 0 || line > lines.size()) return std::nullopt;
  std::string_view src = lines[line - 1];
  size_t first = src.find_first_not_of(" \t");
  if (first == std::string_view::npos || src.substr(first).starts_with("[[")) return std::nullopt;
  bool header = src[first] == '[';
  auto path = defined_path(src.substr(first), header);
  if (!path) return std::nullopt;

  size_t offset = static_cast<size_t>(src.data() - text.data());
  auto before = try_parse(text.substr(0, offset));
  if (!before) return std::nullopt;
  Path full = *path;
  if (!header) {
    Path walk;
    Current cur;
    find_current(*before, walk, false, lines, cur);
    if (cur.in_array) return std::nullopt;
    full.insert(full.begin(), cur.path.begin(), cur.path.end());
    if (cur.path.size() >= 2) return std::nullopt;  // a key set twice inside one job
  }
  if (full.size() < 2 || full[0] != "jobs") return std::nullopt;
  if (full.size() == 2) return full[1];
  // Deeper: `[jobs.unit.env]` or `unit.env.A = ..` is a second definition of the job only
  // where the first one cannot be extended (an inline table, or a [header] for dotted keys).
  const auto* jobs = before->get_as<toml::table>("jobs");
  const auto* job = jobs ? jobs->get_as<toml::table>(full[1]) : nullptr;
  if (!job) return std::nullopt;
  if (job->is_inline() || (!header && starts_header(*job, lines))) return full[1];
  return std::nullopt;
}

}  // namespace

Error syntax_error(const toml::parse_error& err, std::string_view text, const std::string& file) {
  SourcePos pos = pos_of(err.source(), file);
  std::string_view desc = err.description();
  // The line that defines the table: toml++ reports "cannot insert ... into existing inline
  // table" only after reading the whole [header] line, so at the start of the next one.
  size_t line = 0;
  if (desc.find("cannot redefine existing") != std::string_view::npos) {
    line = static_cast<size_t>(pos.line);
  } else if (desc.find("into existing inline table") != std::string_view::npos && pos.line > 0) {
    line = static_cast<size_t>(pos.column == 1 && pos.line > 1 ? pos.line - 1 : pos.line);
  }
  if (line > 0) {
    if (auto name = redefined_job(text, line)) {
      std::string_view src = split_lines(text)[line - 1];
      SourcePos at{file, static_cast<int>(line), static_cast<int>(src.find_first_not_of(" \t")) + 1};
      return Error::msg("{}: duplicate job \"{}\": [jobs.{}] is already defined", at.str(), *name,
                        key_text(*name));
    }
  }
  return Error::msg("{}: invalid TOML: {}", pos.str(), desc);
}

}  // namespace sandrun::config::detail
