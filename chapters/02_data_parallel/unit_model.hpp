// SPDX-License-Identifier: MIT
/// @file unit_model.hpp
/// @brief The reference model run unit by unit (embed, each decoder layer, head), with a hook
/// before and after every unit's forward and backward — where data parallelism plugs in its
/// communication: a bucket's all-reduce once its gradients are complete, a ZeRO-3 gather before a
/// unit runs, a reduce-scatter right after its backward.
///
/// It is built from the same layer classes as nn::Model (nn/), over parameter storage the
/// caller provides: unit u's parameters are views into the flat tensor values[u] (gradients into
/// grads[u]). The layers keep those views, so whatever the caller writes there (a replica, a
/// freshly gathered unit) is what the next forward/backward of that unit uses. Same operations in
/// the same order as nn::Model, so on the same batch it gives bitwise the same numbers.
///
/// What it leaves out: MoE layers (aux losses do not split over data-parallel ranks as a mean),
/// generation (step 7 uses nn::Model replicas).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/ops.hpp"
#include "chapters/02_data_parallel/flat_layout.hpp"
#include "common/model_config.hpp"
#include "nn/layers.hpp"
#include "nn/model.hpp"

namespace fivefold::ch02 {

/// Callbacks around each unit (each may be empty). The argument is the unit index.
struct UnitHooks {
  std::function<void(int)> before_forward;   ///< unit's parameters must be in place after this
  std::function<void(int)> after_forward;    ///< unit's parameters may be released
  std::function<void(int)> before_backward;  ///< unit's parameters (and zeroed grads) in place after this
  std::function<void(int)> after_backward;   ///< unit's gradients are complete
};

/// The model as a sequence of units over caller-provided parameter storage.
class UnitModel {
 public:
  /// @p values[u] / @p grads[u]: flat tensors of at least layout.unit(u).numel elements where
  /// unit u's parameters / gradients live (views; the caller owns the memory).
  UnitModel(Ops& ops, const ModelConfig& cfg, const FlatLayout& layout, const std::vector<Tensor>& values,
            const std::vector<Tensor>& grads);
  /// Number of units (L + 2).
  int num_units() const { return static_cast<int>(names_.size()); }
  /// Forward of tokens/targets [b, T] (int32, host or device) and the mean loss over the b*T
  /// tokens, calling the forward hooks around every unit.
  double forward(const Tensor& tokens, const Tensor& targets, const UnitHooks& hooks = {});
  /// Backward of the last forward, units in reverse order, calling the backward hooks. The
  /// gradients ACCUMULATE into grads[u] (zero them first).
  void backward(const UnitHooks& hooks = {});
  /// Logits [b, T, V] of the last forward.
  const Tensor& logits() const { return head_->logits(); }

 private:
  Ops* ops_;
  nn::ParamRegistry reg_;
  std::vector<std::string> names_, fwd_names_, bwd_names_;  // trace span names (must outlive spans)
  std::unique_ptr<nn::Embedding> embed_;
  std::vector<nn::DecoderLayer> layers_;
  std::unique_ptr<nn::RmsNorm> norm_;
  std::unique_ptr<nn::LmHead> head_;
  Tensor tokens_, targets_, pos_;
  const Tensor* x_ = nullptr;
};

}  // namespace fivefold::ch02
