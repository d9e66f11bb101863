// SPDX-License-Identifier: MIT
/// @file dump.hpp
/// @brief The --dump (docs/reference.md, "The dump") for the serial model, written by rank 0 during
/// training:
/// config.json, inputs/targets (and inputs_sK/targets_sK for every step K with "data": "stream"),
/// params/ (initial), logits.npy and grads/ (step 0), loss.npy, final/ (after the last step).
/// tests/ch01/check_dump.py re-derives the step-0 logits, loss and first AdamW step from it.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/data.hpp"
#include "nn/params.hpp"
#include "common/tensor.hpp"

namespace fivefold::ch01 {

/// Writes the files of a dump into one directory (nothing when the directory is "").
class Dump {
 public:
  /// A dump into @p dir ("" = disabled, e.g. on ranks other than 0).
  explicit Dump(std::string dir) : dir_(std::move(dir)) {}
  /// True when writing.
  bool enabled() const { return !dir_.empty(); }
  /// DIR/config.json.
  void config(const nlohmann::json& j) const;
  /// DIR/NAME.npy for @p name = NAME.
  void tensor(const std::string& name, const Tensor& t) const;
  /// DIR/SUB/PARAM.npy (SUB = @p sub) for every parameter: values, or gradients when @p grads.
  void params(const std::string& sub, const nn::ParamRegistry& reg, bool grads) const;
  /// DIR/loss.npy, float32 [steps].
  void losses(const std::vector<double>& loss) const;
  /// Training step @p k's global batch: inputs_sK / targets_sK (and inputs / targets for step 0).
  void batch(int k, const nn::Batch& b) const;

 private:
  std::string dir_;
};

}  // namespace fivefold::ch01
