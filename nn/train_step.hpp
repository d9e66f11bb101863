// SPDX-License-Identifier: MIT
/// @file train_step.hpp
/// @brief One training step over any assembly: zero the gradients, forward, backward, gradient
/// synchronisation, optimizer. What data parallelism changes is a Synchroniser, not a trainer:
/// - none: the model alone on its rank (LocalUpdate: AdamW over its parameters);
/// - DDP, ZeRO-1, ZeRO-2, ZeRO-3/FSDP (chapter 02): hooks around the units and the update of a
///   replica or of a shard, over the group the gradients are summed over.
/// The same step drives the serial, the tensor-parallel and the DP x TP layouts.
#pragma once

#include <memory>
#include <vector>

#include "backends/communicator.hpp"
#include "backends/ops.hpp"
#include "nn/adamw.hpp"
#include "nn/data.hpp"
#include "nn/decoder.hpp"

namespace fivefold::nn {

/// What a step does around the model's forward and backward to end with updated parameters.
class Synchroniser {
 public:
  virtual ~Synchroniser() = default;
  /// Before the forward: zero the gradients it keeps.
  virtual void zero_grad() = 0;
  /// Called around the units of the forward and the backward (gathers, bucket posts, ...) of a
  /// microbatch. Gradients are synchronised only in the backward of the step's LAST microbatch
  /// (@p last); the earlier ones only accumulate into the gradients.
  virtual UnitHooks hooks(bool last) = 0;
  /// After the backward: the gradient communication still in flight completes (the part of it
  /// the backward did not hide).
  virtual void finish() = 0;
  /// The optimizer step (and whatever brings the parameters back, e.g. an all-gather).
  virtual void update() = 0;
};

/// The synchroniser of a model alone on its rank: AdamW over all of its parameters.
class LocalUpdate : public Synchroniser {
 public:
  /// AdamW(@p cfg) over every parameter of @p params.
  LocalUpdate(Ops& ops, ParamRegistry& params, const AdamWConfig& cfg) : params_(&params), opt_(ops, cfg, params) {}
  void zero_grad() override { params_->zero_grad(); }
  UnitHooks hooks(bool) override { return {}; }
  void finish() override {}
  void update() override { opt_.step(); }

 private:
  ParamRegistry* params_;
  AdamW opt_;
};

/// AdamW after summing the gradients over the groups of the layout: for each (axis, group)
/// pair, every parameter whose Param::sum_axes has that axis gets its gradient summed over the
/// group: one all-reduce per group of all such gradients packed into one buffer. Sequence
/// parallelism uses it (every gradient over the sp group; under Megatron-SP the norm gains over
/// tp); chapter 07 names more axes.
class SummedUpdate : public Synchroniser {
 public:
  /// AdamW(@p cfg) over every parameter of @p params, gradients summed over @p groups.
  SummedUpdate(Ops& ops, ParamRegistry& params, const AdamWConfig& cfg,
               std::vector<std::pair<unsigned, Communicator*>> groups);
  void zero_grad() override { params_->zero_grad(); }
  UnitHooks hooks(bool) override { return {}; }
  /// The all-reduces, one per group (groups of one rank are skipped).
  void finish() override;
  void update() override { opt_.step(); }
  /// Bytes one finish() hands to the all-reduce of group @p axis (0 when none).
  std::int64_t bytes(unsigned axis) const;

 private:
  Ops* ops_;
  ParamRegistry* params_;
  AdamW opt_;
  std::vector<std::pair<unsigned, Communicator*>> groups_;
  Tensor flat_;
};

/// Seconds spent in the phases of the steps so far (this rank; sums over the steps after the
/// first, which is a warm-up: first-touch allocations of activations and MPI connections).
struct StepTimes {
  double forward = 0;       ///< forward pass (ZeRO-3 gathers included)
  double backward = 0;      ///< backward pass (anything communicated during it included)
  double exposed_comm = 0;  ///< communication after the backward (waiting for buckets, all-reduce, RS)
  double comm_lifetime = 0; ///< non-blocking calls: post-to-observed-completion time, summed
  double update = 0;        ///< optimizer step and the all-gather after it (stages 1, 2)
  int steps = 0;            ///< steps timed (every step but the first)
  int calls = 0;            ///< steps taken (the first is not timed)
};

/// One step of a model that holds every layer on this rank: sync.zero_grad(); for each
/// microbatch, its forward and backward with sync.hooks(last microbatch?) (the gradients
/// accumulate over the microbatches, each scaled as a share of the step's mean); sync.finish();
/// sync.update(). With @p times, the phases are timed (after a device synchronisation each).
/// Returns the mean loss over all the microbatches' tokens.
double train_step(Decoder& model, Synchroniser& sync, const std::vector<Batch>& microbatches,
                  StepTimes* times = nullptr);
/// The step of one batch (one microbatch).
double train_step(Decoder& model, Synchroniser& sync, const Batch& batch, StepTimes* times = nullptr);

}  // namespace fivefold::nn
