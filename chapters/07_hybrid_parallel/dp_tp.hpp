// SPDX-License-Identifier: MIT
/// @file dp_tp.hpp
/// @brief DP x TP: the tensor-parallel model of chapter 03 inside each TP group, and the
/// data-parallel gradient all-reduce of chapter 02 across the DP groups, on two communicators
/// of one process grid.
///
/// A rank with coordinates (tp = t, dp = d) holds TP shard t of every parameter (tp_layout.hpp)
/// and runs sequences BatchSplit{B, dp}.offset(d).. of the global batch; the tp ranks of one TP
/// group share the same sequences. After its backward, a rank's shard gradient covers its own
/// b_d sequences; the gradient of the global mean is sum_d (b_d / B) * that, summed over the
/// DP group, the ranks that hold the SAME shard of the SAME parameter:
///
///   TP group (same data, different shards):   all-reduces of activations, inside the layers
///   DP group (same shards, different data):   one all-reduce of the shard gradients per step
///
/// So a rank's DP traffic is its shard: (about) 1/tp of the model's gradient, never the whole
/// model; replicated parameters (the RMSNorm gains) are reduced over dp like any shard and stay
/// identical on every rank of the world, because every TP rank reduces the same numbers.
///
/// It is a composition, not a trainer of its own: chapter 03's TpModel (the decoder with the TP
/// parts), a Synchroniser over the DP group (ShardDdp: chapter 02's stage-0 DDP with buckets),
/// and the one training step nn::train_step. The shard gradients are packed into one flat buffer
/// (FlatLayout over the shard shapes), cut into buckets in backward order (make_buckets), and each
/// bucket's iall_reduce is posted (post_ready_bucket) from the decoder's after_backward hook, as
/// soon as its units' gradients are complete. The reduced buffer is unpacked into the shard
/// gradients before AdamW.
///
/// What it leaves out: ZeRO over the DP group (Megatron's distributed optimizer), sequence
/// parallelism inside the TP group (chapter 05), pipeline stages (chapter 04), MoE.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/communicator.hpp"
#include "backends/ops.hpp"
#include "chapters/02_data_parallel/ddp.hpp"
#include "chapters/02_data_parallel/dp_trainer.hpp"
#include "chapters/03_tensor_parallel/tp_model.hpp"
#include "nn/adamw.hpp"
#include "nn/data.hpp"
#include "nn/train_step.hpp"

namespace fivefold::ch07 {

/// How the DP gradient all-reduce runs.
struct DpTpConfig {
  double bucket_mb = 0.05;  ///< bucket size in MiB (0: one bucket per unit)
  bool overlap = true;      ///< post each bucket during the backward (else blocking, after it)
  /// ZeRO-1 over the DP group: after the backward one reduce-scatter leaves each rank its 1/dp
  /// of the packed gradient, AdamW updates that slice only (its moments are 1/dp of the shard's),
  /// and one all-gather brings the updated parameters back (no buckets).
  bool zero1 = false;
};

/// The two communicators of a dp x tp grid with tp varying fastest (the default order,
/// rank = t + tp*d): a TP group is tp neighbouring ranks (same d), a DP group the ranks tp apart
/// that hold the same shard (same t).
struct DpTpComms {
  std::unique_ptr<Communicator> tp;  ///< this rank's TP group, group-local rank t
  std::unique_ptr<Communicator> dp;  ///< this rank's DP group, group-local rank d
};

/// Builds them with two splits of @p world (collective); @p tp must divide the world size. For
/// this grid it is what GridComms does for {tp} and {dp}; chapter 07's exercise 3 is this function.
DpTpComms split_dp_tp(Communicator& world, int tp);

/// The units of the TP shards of @p cfg over @p tp ranks: chapter 02's units (embed, layers.l,
/// head) with every parameter's shape replaced by its shard's shape.
std::vector<ch02::Unit> shard_units(const ModelConfig& cfg, int tp);

/// Chapter 02's bucketed DDP over the DP group, for parameters that do not live in one flat
/// buffer (here: TP shards): each unit's gradients are packed, weighted, into a flat buffer once
/// the unit's backward is done and its bucket posted; after the backward the buckets are waited
/// for and unpacked, then AdamW updates the shards.
class ShardDdp : public nn::Synchroniser {
 public:
  /// Over the parameters @p params grouped by @p units (e.g. shard_units), the DP group @p dp.
  /// @p first_unit: the decoder's unit index of units[0] (a pipeline stage holds units
  /// first_unit .. first_unit + units.size() - 1).
  ShardDdp(Ops& ops, Communicator& dp, nn::ParamRegistry& params, std::vector<ch02::Unit> units,
           const nn::AdamWConfig& adam, const DpTpConfig& dc, int first_unit = 0);
  /// This rank's weight b_d / B in the global mean (set before each step).
  void set_weight(double w) { weight_ = static_cast<float>(w); }
  void zero_grad() override;
  nn::UnitHooks hooks(bool last) override;
  void finish() override;
  void update() override;
  /// The flat layout of this rank's shards (n = dp ranks).
  const ch02::FlatLayout& layout() const { return layout_; }
  /// The DP buckets, in the order they are posted.
  const std::vector<ch02::Bucket>& buckets() const { return buckets_; }
  /// What the first step did, in order: "bwd(head)", "post AR(bucket 0)", ...
  const std::vector<std::string>& schedule() const { return schedule_; }

 private:
  void unit_done(int u);
  void poll(bool wait);  // tests (or waits for) the posted buckets; traces each one's life
  Ops* ops_;
  Communicator* dp_;
  DpTpConfig dc_;
  ch02::FlatLayout layout_;
  std::vector<ch02::Bucket> buckets_;
  std::vector<std::vector<nn::Param*>> unit_params_;  // unit u's parameters, in layout order
  nn::ParamRegistry* params_;
  Tensor grads_;                                      // [padded]: packed, weighted gradients
  ch02::PostedBuckets posted_;                        // this step's bucket all-reduces in flight
  nn::AdamW opt_;
  int first_unit_ = 0;
  Tensor values_, gshard_, send_;  // ZeRO-1: packed parameters [padded], this rank's gradient slice and parameter slice
  float weight_ = 1.0f;
  int calls_ = 0;
  std::vector<std::string> schedule_;
};

/// One rank of a DP x TP job: the TP model and the DP synchroniser, stepped by nn::train_step.
class DpTpTrainer {
 public:
  /// The TP model over @p tp (validate_tp first) and its ShardDdp over @p dp.
  DpTpTrainer(Ops& ops, Communicator& tp, Communicator& dp, const ModelConfig& cfg, const DpTpConfig& dc);
  /// One training step on this rank's sequences @p local, weighted @p weight = b_d / B. Returns
  /// the mean loss over @p local (the same on every rank of the TP group).
  double step(const nn::Batch& local, double weight) {
    sync_.set_weight(weight);
    return nn::train_step(model_, sync_, local);  // TUTORIAL: the same step as every other layout
  }
  /// The TP model (its shards hold the DP-reduced gradients after step()).
  ch03::TpModel& model() { return model_; }
  /// The flat layout of this rank's shards (n = dp ranks).
  const ch02::FlatLayout& layout() const { return sync_.layout(); }
  /// The DP buckets, in the order they are posted.
  const std::vector<ch02::Bucket>& buckets() const { return sync_.buckets(); }
  /// What the first step did, in order: "bwd(head)", "post AR(bucket 0)", ...
  const std::vector<std::string>& schedule() const { return sync_.schedule(); }

 private:
  ch03::TpModel model_;
  ShardDdp sync_;
};

}  // namespace fivefold::ch07
