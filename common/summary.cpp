// SPDX-License-Identifier: MIT
// Cross-checks (ours vs a reference tensor) and the `--json` run summary
// (docs/reference.md, "The summary").
//
// Errors are accumulated in double whatever the tensors' dtype, so the check itself adds no
// rounding worth mentioning. A check that cannot be computed (different element counts) fails
// with infinite errors. Non-finite numbers (NaN, inf) have no JSON spelling: the summary writes
// them as null, and a reader should treat a null error as "failed".
#include "common/summary.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "common/check.hpp"
#include "common/output.hpp"

namespace fivefold {

namespace {

/// Host copy of @p t as doubles (fp32 or int32, any device).
std::vector<double> as_doubles(const Tensor& t) {
  std::vector<double> out;
  if (!t.defined()) return out;
  out.reserve(static_cast<std::size_t>(t.numel()));
  if (t.dtype() == DType::f32) {
    for (float v : t.to_vector()) out.push_back(v);
  } else {
    for (std::int32_t v : t.to_ivector()) out.push_back(v);
  }
  return out;
}

/// @p v as JSON, or null when it is NaN or infinite (JSON has no spelling for them).
nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

CheckResult compare_values(const std::string& name, const std::vector<double>& ours, const std::vector<double>& ref,
                           double tolerance) {
  CheckResult r;
  r.name = name;
  r.tolerance = tolerance;
  if (ours.size() != ref.size()) {
    r.max_abs_err = r.max_rel_err = std::numeric_limits<double>::infinity();
    return r;
  }
  double diff2 = 0, ref2 = 0, ours2 = 0, max_abs = 0;
  bool any_nan = false;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    const double d = ours[i] - ref[i];
    diff2 += d * d;
    ref2 += ref[i] * ref[i];
    ours2 += ours[i] * ours[i];
    any_nan = any_nan || std::isnan(d);
    max_abs = std::max(max_abs, std::fabs(d));
  }
  r.max_abs_err = any_nan ? std::nan("") : max_abs;
  r.max_rel_err = ref2 > 0 ? std::sqrt(diff2) / std::sqrt(ref2) : std::sqrt(ours2);
  r.passed = r.max_rel_err <= tolerance;
  return r;
}

CheckResult compare_exact(const std::string& name, double got, double want) {
  CheckResult r;
  r.name = name;
  r.max_abs_err = std::fabs(got - want);
  r.max_rel_err = want != 0 ? r.max_abs_err / std::fabs(want) : std::fabs(got);
  r.passed = got == want;
  return r;
}

CheckResult compare(const std::string& name, const Tensor& ours, const Tensor& ref, double tolerance) {
  CheckResult r;
  r.name = name;
  r.tolerance = tolerance;
  if (ours.numel() != ref.numel()) {
    r.max_abs_err = r.max_rel_err = std::numeric_limits<double>::infinity();
    r.passed = false;
    return r;
  }
  const std::vector<double> a = as_doubles(ours);
  const std::vector<double> b = as_doubles(ref);
  double diff2 = 0, ref2 = 0, ours2 = 0, max_abs = 0;
  bool any_nan = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = a[i] - b[i];
    diff2 += d * d;
    ref2 += b[i] * b[i];
    ours2 += a[i] * a[i];
    if (std::isnan(d)) any_nan = true;  // NaN compares false with everything: remember it
    max_abs = std::max(max_abs, std::fabs(d));
  }
  r.max_abs_err = any_nan ? std::nan("") : max_abs;
  // When the reference is all zeros, the "relative" error is the size of ours (0 iff exact).
  r.max_rel_err = ref2 > 0 ? std::sqrt(diff2) / std::sqrt(ref2) : std::sqrt(ours2);
  r.passed = r.max_rel_err <= tolerance;  // false for NaN
  return r;
}

void merge(CheckResult& acc, const CheckResult& other) {
  auto worst = [](double x, double y) { return std::isnan(x) || std::isnan(y) ? std::nan("") : std::max(x, y); };
  acc.max_abs_err = worst(acc.max_abs_err, other.max_abs_err);
  acc.max_rel_err = worst(acc.max_rel_err, other.max_rel_err);
  acc.passed = acc.passed && other.passed;
}

bool Summary::all_passed() const {
  for (const auto& c : checks) {
    if (!c.passed) return false;
  }
  for (const auto& e : comm) {
    if (!e.matches()) return false;
  }
  return true;
}

nlohmann::json Summary::to_json() const {
  using nlohmann::json;
  json j = json::object();
  j["chapter"] = chapter;
  j["backend"] = backend;
  j["world_size"] = world_size;
  j["config"] = config;
  j["loss"] = json::array();
  for (double l : loss) j["loss"].push_back(number(l));
  j["checks"] = json::array();
  for (const auto& c : checks) {
    j["checks"].push_back({{"name", c.name},
                           {"max_abs_err", number(c.max_abs_err)},
                           {"max_rel_err", number(c.max_rel_err)},
                           {"tolerance", number(c.tolerance)},
                           {"passed", c.passed}});
  }
  j["comm"] = json::array();
  for (const auto& e : comm) {
    j["comm"].push_back({{"group", e.group},
                         {"op", e.op},
                         {"calls", e.calls},
                         {"payload_bytes", e.payload_bytes},
                         {"predicted_calls", e.predicted_calls},
                         {"predicted_payload_bytes", e.predicted_payload_bytes}});
  }
  j["memory"] = {{"param_bytes_per_rank", param_bytes_per_rank}, {"peak_bytes_per_rank", peak_bytes_per_rank}};
  j["time_s"] = number(time_s);
  for (const auto& [key, value] : sections.items()) {
    FIVEFOLD_CHECK(!j.contains(key), "Summary: section \"", key, "\" would overwrite a common key; rename it");
    j[key] = value;
  }
  return j;
}

void Summary::write(const std::string& path) const { write_json_file(path, to_json()); }

}  // namespace fivefold
