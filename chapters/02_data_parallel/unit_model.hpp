// SPDX-License-Identifier: MIT
/// @file unit_model.hpp
/// @brief The serial model over parameter storage the caller provides, run unit by unit (embed,
/// each decoder layer, head) with a hook before and after every unit's forward and backward —
/// where data parallelism plugs in its communication: a bucket's all-reduce once its gradients
/// are complete, a ZeRO-3 gather before a unit runs, a reduce-scatter right after its backward.
///
/// It is the one decoder of nn/decoder.hpp with the serial parts, as nn::Model, but over a
/// registry of VIEWS: unit u's parameters are views into the flat tensor values[u] (gradients into
/// grads[u]). The layers keep those views, so whatever the caller writes there (a replica, a
/// freshly gathered unit) is what the next forward/backward of that unit uses. Same operations in
/// the same order as nn::Model, so on the same batch it gives bitwise the same numbers. The hooks
/// are passed to Decoder::forward / Decoder::backward.
///
/// What it leaves out: MoE layers (not supported by this chapter's data parallelism yet),
/// generation (step 7 uses nn::Model replicas).
#pragma once

#include <vector>

#include "backends/ops.hpp"
#include "chapters/02_data_parallel/flat_layout.hpp"
#include "common/model_config.hpp"
#include "nn/decoder.hpp"

namespace fivefold::ch02 {

using nn::UnitHooks;

/// The views of a UnitModel, built before its decoder (a base class, so it is constructed first).
struct UnitStorage {
  /// Registers unit u's parameters as views into @p values[u] / @p grads[u].
  UnitStorage(Ops& ops, const ModelConfig& cfg, const FlatLayout& layout, const std::vector<Tensor>& values,
              const std::vector<Tensor>& grads);
  nn::ParamRegistry reg_;  ///< views into the caller's storage
  nn::SerialParts parts_;  ///< the serial parts
};

/// The model as a sequence of units over caller-provided parameter storage.
class UnitModel : private UnitStorage, public nn::Decoder {
 public:
  /// @p values[u] / @p grads[u]: flat tensors of at least layout.unit(u).numel elements where
  /// unit u's parameters / gradients live (views; the caller owns the memory).
  UnitModel(Ops& ops, const ModelConfig& cfg, const FlatLayout& layout, const std::vector<Tensor>& values,
            const std::vector<Tensor>& grads);
  /// Number of units (L + 2).
  int num_units() const { return config().layers + 2; }
};

}  // namespace fivefold::ch02
