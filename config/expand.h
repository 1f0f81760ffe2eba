// Internal to config/: what parse_job hands on after a job's keys are read: its matrix, then
// the expansion into one job per combination and the resolution of `needs` across jobs.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/toml_read.h"

namespace sandrun::config::detail {

// The most combinations one matrix job may expand to.
inline constexpr size_t kMaxCombinations = 256;

// One include or exclude entry: key = value pairs as written, each with its position.
struct MatrixEntry {
  std::vector<std::pair<std::string, std::string>> values;
  SourcePos pos;
};

// `matrix = { KEY = [values...], exclude = [...], include = [...] }` as written, values as text.
struct Matrix {
  SourcePos pos;     // of the matrix value
  std::string path;  // "jobs.unit.matrix", for messages
  std::vector<std::pair<std::string, std::vector<std::string>>> axes;  // in the order written
  std::vector<MatrixEntry> exclude;
  std::vector<MatrixEntry> include;
};

Result<Matrix> parse_matrix(const toml::node& value, const Scope& scope);

// "MATRIX_" + the key in upper case, other characters than letters and digits as '_'.
std::string matrix_env_name(std::string_view key);

// The jobs one [jobs.NAME] becomes: one per combination of its matrix (only itself without
// one), named "NAME (k=v, ...)", with ${{ matrix.KEY }} substituted and MATRIX_KEY set. A
// `${{` in a job without a matrix is an error too. `defaults` tells inherited values apart in
// messages.
Result<std::vector<JobSpec>> expand_job(const JobSpec& job, const std::optional<Matrix>& matrix,
                                        const JobSpec& defaults);

// Turns each job's needs (names as written) into expanded names, refusing unknown jobs, a job
// needing itself and cycles.
Result<void> resolve_needs(std::vector<JobSpec>& jobs);

}  // namespace sandrun::config::detail
