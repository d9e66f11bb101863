// SPDX-License-Identifier: MIT
/// @file ep_model.hpp
/// @brief The model with its experts spread over the ep group: the one decoder with the
/// expert-parallel MoE part (ep_moe.hpp), this rank's parameters (every dense weight and the
/// router; its own experts only), and the training step of a rank that holds whole sequences.
///
/// Gradients: a dense weight (attention, norms, embedding, head, router) saw this rank's
/// sequences only and is summed over all ep * dp ranks; an expert's weights live on the dp ranks
/// that hold the same experts (the expert-data-parallel group) and are summed over those. Both
/// follow Param::sum_axes: dense weights have kSumDp | kSumEp, experts kSumDp, and the step's
/// nn::SummedUpdate all-reduces each over its groups (dp, then ep).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "chapters/06_expert_parallel/ep_moe.hpp"
#include "nn/decoder.hpp"
#include "nn/train_step.hpp"

namespace fivefold::ch06 {

/// The serial parts with the expert-parallel MoE block.
class EpParts : public nn::SerialParts {
 public:
  /// Parts of @p cfg with experts over @p ep.
  EpParts(Ops& ops, Communicator& ep, const ModelConfig& cfg) : nn::SerialParts(ops, cfg), ops_(&ops), ep_(&ep), cfg_(cfg) {}
  std::unique_ptr<nn::Block> mlp(nn::ParamRegistry& params, int l) override;
  /// The expert-parallel MoE layers made so far.
  const std::vector<EpMoeLayer*>& moe_layers() const { return moe_; }

 private:
  Ops* ops_;
  Communicator* ep_;
  ModelConfig cfg_;
  std::vector<EpMoeLayer*> moe_;
};

/// This rank's parameters and the parts, built before the decoder.
struct EpStorage {
  /// Every dense parameter of @p cfg and this rank's experts.
  EpStorage(Ops& ops, Communicator& ep, const ModelConfig& cfg);
  nn::ParamRegistry params_;  ///< this rank's parameters
  EpParts parts_;             ///< the parts
};

/// Why @p cfg cannot run with @p ep x @p dp ranks out of @p world (one line naming the value and
/// the fix), or "": a MoE model, E % ep == 0, top-k <= E, ep * dp == world, B divisible by
/// ep * dp (every rank holds whole sequences: capacity is counted per sequence).
std::string check_layout(const ModelConfig& cfg, int ep, int dp, int world);

/// One rank's model: the decoder over its parameters, the step over its sequences.
class EpModel : private EpStorage, public nn::Decoder {
 public:
  /// @p ep: the ranks that split the experts; @p dp: the copies of that layout (the
  /// expert-data-parallel group); @p data: every rank that holds other sequences (ep * dp).
  EpModel(Ops& ops, Communicator& ep, Communicator& dp, Communicator& data, const ModelConfig& cfg);
  /// This rank's parameters.
  nn::ParamRegistry& params() { return params_; }
  /// AdamW after the sums of Param::sum_axes: dense weights over dp and ep, experts over dp.
  std::unique_ptr<nn::SummedUpdate> make_update(const nn::AdamWConfig& cfg);
  /// This rank's sequences of @p global (the data group's rank picks them).
  nn::Batch mine(const nn::Batch& global) const;
  /// One training step on @p global; returns the global mean loss (aux included), the same on
  /// every rank. @p before_update runs between the gradient sums and the update.
  double step(nn::Synchroniser& sync, const nn::Batch& global, const std::function<void()>& before_update = {});
  /// The MoE layers.
  const std::vector<EpMoeLayer*>& moe_layers() const { return parts_.moe_layers(); }
  /// Their counters, summed.
  EpStats stats() const;
  /// Forgets them.
  void reset_stats();
  /// EpMoeLayer::set_fixed_buffers on every MoE layer.
  void set_fixed_buffers(bool on) {
    for (EpMoeLayer* l : moe_layers()) l->set_fixed_buffers(on);
  }

 private:
  Communicator* ep_;
  Communicator* dp_;
  Communicator* data_;
  ModelConfig cfg_;
};

/// The rows this rank sends to each rank of the ep group when its sequences are @p first ..
/// @p first + b - 1 of a batch routed as @p r (the serial model's routing of the whole batch, T
/// tokens per sequence): per destination, the kept assignments to its experts.
std::vector<std::int64_t> rows_to(const nn::Routing& r, std::int64_t T, std::int64_t first, std::int64_t b, int ep);

}  // namespace fivefold::ch06
