// SPDX-License-Identifier: MIT
/// @file summary.hpp
/// @brief Cross-checks and the `--json` run summary (docs/reference.md, "The summary").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/tensor.hpp"

namespace fivefold {

/// Result of comparing our tensor(s) with a reference.
struct CheckResult {
  std::string name;          ///< what was compared, e.g. "grads vs serial"
  double max_abs_err = 0;    ///< max |ours - ref| over all elements
  double max_rel_err = 0;    ///< max over tensors of ||ours - ref||_2 / ||ref||_2
  double tolerance = 0;      ///< bound on max_rel_err
  bool passed = false;       ///< max_rel_err <= tolerance (and shapes equal)
};

/// Compares @p ours with @p ref (any devices, fp32 or int32, same numel). Relative L2 error is
/// ||ours-ref|| / ||ref||; when ||ref|| is 0 it is ||ours|| (so 0 only for an exact match).
CheckResult compare(const std::string& name, const Tensor& ours, const Tensor& ref, double tolerance);
/// Compares two lists of numbers in double precision with compare()'s measures (relative L2,
/// largest absolute difference): values computed in double (losses) are not rounded to fp32
/// first, so the check reports the error it measured.
CheckResult compare_values(const std::string& name, const std::vector<double>& ours, const std::vector<double>& ref,
                           double tolerance);
/// An exact comparison of two numbers (counts, bytes) as a check: error |got - want|,
/// relative to |want|, tolerance 0: passed only when they are equal.
CheckResult compare_exact(const std::string& name, double got, double want);
/// Folds @p other into @p acc (max of errors, AND of passed) — for one check over many tensors.
void merge(CheckResult& acc, const CheckResult& other);

/// Counted communication of one (group, op) next to the chapter's formula.
struct CommEntry {
  std::string group;                       ///< communicator name
  std::string op;                          ///< operation name
  std::int64_t calls = 0;                  ///< counted calls
  std::int64_t payload_bytes = 0;          ///< counted payload bytes
  std::int64_t predicted_calls = 0;        ///< from the formula
  std::int64_t predicted_payload_bytes = 0;///< from the formula
  /// Counted equals predicted.
  bool matches() const { return calls == predicted_calls && payload_bytes == predicted_payload_bytes; }
};

/// The run summary written by `--json`.
struct Summary {
  std::string chapter;                 ///< e.g. "00_collectives"
  std::string backend;                 ///< "cpu" or "cuda"
  int world_size = 1;                  ///< number of ranks
  nlohmann::json config = nlohmann::json::object();  ///< every setting of the run
  std::vector<double> loss;            ///< loss per step (chapters that train)
  std::vector<CheckResult> checks;     ///< every cross-check of the run
  std::vector<CommEntry> comm;         ///< counted vs predicted communication
  std::vector<std::int64_t> param_bytes_per_rank;  ///< memory (chapters that hold a model)
  std::vector<std::int64_t> peak_bytes_per_rank;   ///< memory (chapters that hold a model)
  double time_s = 0;                   ///< wall time of the run
  /// A chapter's own sections, each written as a top-level key of the summary next to the
  /// common ones (e.g. chapter 04's "pipeline": bubbles and peak activations per schedule).
  nlohmann::json sections = nlohmann::json::object();

  /// True when every check passed and every comm entry matches its prediction.
  bool all_passed() const;
  /// The JSON object of docs/reference.md, "The summary". NaN or infinite numbers (e.g. the errors
  /// of a check whose
  /// shapes differ) are written as null, which readers must treat as a failed check.
  nlohmann::json to_json() const;
  /// Writes to_json() to @p path (pretty-printed). Throws Error naming the path on failure.
  void write(const std::string& path) const;
};

}  // namespace fivefold
