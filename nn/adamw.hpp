// SPDX-License-Identifier: MIT
/// @file adamw.hpp
/// @brief AdamW with torch.optim.AdamW semantics over a list of (value, gradient) tensors.
///
/// Per step t (counted from 1): p -= lr*wd*p (decoupled decay), then the Adam update with bias
/// correction (Ops::adamw_step). Moments m, v start at zero on the parameters' device. Works on
/// whole parameters or on shards (ZeRO passes its slices to add()).
#pragma once

#include <vector>

#include "backends/ops.hpp"
#include "common/model_config.hpp"
#include "nn/params.hpp"

namespace fivefold::nn {

/// Hyper-parameters (torch defaults).
struct AdamWConfig {
  float lr = 1e-3f;            ///< learning rate
  float beta1 = 0.9f;          ///< first-moment decay
  float beta2 = 0.999f;        ///< second-moment decay
  float eps = 1e-8f;           ///< denominator epsilon
  float weight_decay = 0.0f;   ///< decoupled weight decay
  /// The optimizer settings of a ModelConfig.
  static AdamWConfig from(const ModelConfig& cfg);
};

/// The optimizer and its state.
class AdamW {
 public:
  /// An optimizer with no tensors yet.
  AdamW(Ops& ops, const AdamWConfig& cfg) : ops_(&ops), cfg_(cfg) {}
  /// An optimizer over every parameter of @p reg.
  AdamW(Ops& ops, const AdamWConfig& cfg, ParamRegistry& reg);
  /// Adds one tensor and its gradient (handles; same size).
  void add(Tensor value, Tensor grad);
  /// One update of every tensor from its current gradient.
  void step();
  /// Number of steps taken.
  int steps() const { return step_; }
  /// Changes the learning rate (schedules).
  void set_lr(float lr) { cfg_.lr = lr; }

 private:
  struct Slot {
    Tensor value, grad, m, v;
  };
  Ops* ops_;
  AdamWConfig cfg_;
  std::vector<Slot> slots_;
  int step_ = 0;
};

}  // namespace fivefold::nn
