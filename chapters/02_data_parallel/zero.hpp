// SPDX-License-Identifier: MIT
/// @file zero.hpp
/// @brief The ZeRO stages, each a DpTrainer (see the table in dp_trainer.hpp):
/// - Zero1: full replica and full gradient; after the backward one reduce-scatter leaves each rank
///   its 1/n of the summed gradient, AdamW updates that slice (its m and v are 1/n), and one
///   all-gather rebuilds the replica.
/// - Zero2: the gradient is never held whole: each unit's gradient lives in a workspace from its
///   backward until its (non-blocking) reduce-scatter into this rank's shard; then as ZeRO-1.
/// - Zero3 (FSDP): the parameters too are only a shard; a unit is all-gathered into a workspace
///   before its forward and again before its backward, and released after (the next unit's gather
///   prefetched into a second workspace while the current one computes).
#pragma once

#include "chapters/02_data_parallel/dp_trainer.hpp"

namespace fivefold::ch02 {

/// ZeRO-1: optimizer states sharded.
class Zero1 : public DpTrainer {
 public:
  /// A replica drawn from the seed, its full gradient, this rank's gradient shard, AdamW over the
  /// owned slice of each segment.
  Zero1(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc);
  void zero_grad() override { ops_->fill(grads_, 0.0f); }
  nn::UnitHooks hooks(bool last) override;
  void finish() override {}
  void update() override;
  Tensor dense_params() override { return layout_.to_dense(*ops_, params_); }
  Tensor dense_grads() override { return layout_.to_dense(*ops_, gather_shards(grad_shard_)); }

 private:
  Tensor params_, grads_, grad_shard_, send_;  // [padded], [padded], [padded/n], [padded/n]
};

/// ZeRO-2: + gradients sharded, reduce-scattered unit by unit during the backward.
class Zero2 : public DpTrainer {
 public:
  /// A replica drawn from the seed, the gradient workspaces and this rank's gradient shard.
  Zero2(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc);
  void zero_grad() override {}  // each unit's workspace is zeroed right before its backward
  nn::UnitHooks hooks(bool last) override;
  void finish() override;
  void update() override;
  Tensor dense_params() override { return layout_.to_dense(*ops_, params_); }
  Tensor dense_grads() override { return layout_.to_dense(*ops_, gather_shards(grad_shard_)); }

 protected:
  /// The gradient side only (what ZeRO-3 shares): this rank's gradient shard and the workspaces.
  Zero2(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc, bool);
  /// Unit @p u's gradient: a view of its workspace (one per unit parity when overlapping).
  Tensor unit_grads(int u) { return gws_[gslot_of(u)].flat(0, layout_.unit(u).numel); }
  /// Throws (a usage error) unless @p last: these stages take one microbatch per step.
  void refuse_microbatches(bool last);
  /// Before unit @p u's backward: the workspace's previous reduce-scatter must be done; zero it.
  void ready_workspace(int u);
  /// After unit @p u's backward: reduce-scatter its (weighted) gradient into this rank's shard.
  void reduce_unit(int u);
  /// Tests the non-blocking calls in flight (MPI progress; ZeRO-3 adds its gathers).
  virtual void progress();
  Tensor grad_shard_;    ///< [padded/n]: this rank's slice of every segment's gradient
  Tensor gws_[2];        ///< unit gradient workspaces [max_padded]
  InFlight reduces_[2];  ///< the reduce-scatter of each workspace

 private:
  int gslot_of(int u) const { return dc_.overlap ? u % 2 : 0; }
  void all_gather_params();
  Tensor params_, send_;  // the replica [padded], and the staging copy of the owned slices [padded/n]
};

/// ZeRO-3 / FSDP: + parameters sharded, gathered unit by unit.
class Zero3 : public Zero2 {
 public:
  /// This rank's parameter shard drawn from the seed, the gather workspaces, and ZeRO-2's
  /// gradient side.
  Zero3(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc);
  nn::UnitHooks hooks(bool last) override;
  void update() override;
  Tensor dense_params() override { return layout_.to_dense(*ops_, gather_shards(param_shard_)); }

 private:
  void progress() override;
  int slot_of(int u) const { return dc_.prefetch ? u % 2 : 0; }
  void gather_unit(int u);
  void prefetch_unit(int u);
  void release_unit(int u);
  Tensor param_shard_;        // [padded/n]
  Tensor ws_[2];              // gather workspaces [max_padded]
  int holder_[2] = {-1, -1};  // which unit each workspace holds (-1: free)
  InFlight gathers_[2];       // the prefetch into each workspace
};

}  // namespace fivefold::ch02
