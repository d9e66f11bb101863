// SPDX-License-Identifier: MIT
/// @file dp_trainer.hpp
/// @brief Data-parallel training of the reference model: DDP (naive, or bucketed with the
/// all-reduce overlapped with the backward) and ZeRO stages 1, 2 and 3 (FSDP).
///
/// Every rank runs the whole model on its own slice of the global batch; the gradient every rank
/// needs is the mean over the global batch, obtained with collectives in the group `comm`:
/// | stage | parameters        | gradients           | AdamW m, v | collectives per step          |
/// |-------|-------------------|---------------------|------------|-------------------------------|
/// | 0     | full replica      | full, all-reduced   | full       | all-reduce (per param/bucket) |
/// | 1     | full replica      | full, then a shard  | shard      | reduce-scatter + all-gather   |
/// | 2     | full replica      | shard (per unit)    | shard      | per unit: iRS in bwd, AG after|
/// | 3     | shard             | shard (per unit)    | shard      | per unit: AG fwd, AG bwd, iRS |
/// (iRS: non-blocking reduce-scatter overlapping the next unit's backward; ZeRO-3's gathers of
/// the next unit are started ahead with iall_gather when prefetching.)
/// A rank's mean loss covers its own b_r sequences; the global mean is sum_r (b_r/B) * its mean,
/// so each rank scales its gradients by b_r/B (1/n for an even split) before the sum.
///
/// What it leaves out: gradient accumulation over micro-batches, mixed precision, CPU offload,
/// overlap of the optimizer step with communication.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/communicator.hpp"
#include "backends/ops.hpp"
#include "chapters/02_data_parallel/flat_layout.hpp"
#include "chapters/02_data_parallel/unit_model.hpp"
#include "common/model_config.hpp"
#include "nn/adamw.hpp"
#include "nn/data.hpp"

namespace fivefold::ch02 {

/// How to run data parallelism.
struct DpConfig {
  int zero = 0;            ///< ZeRO stage 0..3 (0 = DDP, replicated everything)
  double bucket_mb = 0.0;  ///< stage 0: bucket size in MiB; 0 = naive, one all-reduce per parameter after backward
  /// Stage 0 with buckets: iall_reduce each bucket as soon as its gradients are complete; stages
  /// 2-3: ireduce_scatter each unit's gradient while the next unit's backward runs (two gradient
  /// workspaces). Off: blocking calls (stage 0: after the backward).
  bool overlap = true;
  /// Stage 3: start the next unit's all-gather (iall_gather) right after the current unit's,
  /// into a second workspace, so it runs while the current unit computes.
  bool prefetch = true;
};

/// Bytes one rank holds, by kind (what this trainer allocated; exact, counted per tensor).
struct MemoryBytes {
  std::int64_t params = 0;     ///< parameters: the replica, or the owned shard
  std::int64_t grads = 0;      ///< gradients kept between steps: full, or the owned shard (+ RS output)
  std::int64_t optimizer = 0;  ///< AdamW m and v
  std::int64_t buffers = 0;    ///< communication buffers: gather/grad workspaces, staging copies
  /// Sum of all four.
  std::int64_t total() const { return params + grads + optimizer + buffers; }
};

/// Gradient bucket of stage 0: consecutive units, reduced together.
struct Bucket {
  int first_unit = 0;       ///< lowest unit (its backward completes the bucket)
  int last_unit = 0;        ///< highest unit (its backward comes first)
  std::int64_t offset = 0;  ///< start in the flat gradient buffer
  std::int64_t numel = 0;   ///< elements
};

/// Stage-0 buckets of @p layout: whole units in BACKWARD order (the last unit first), each
/// closed once it holds at least @p max_elements elements (the last one may hold fewer).
std::vector<Bucket> make_buckets(const FlatLayout& layout, std::int64_t max_elements);

/// Stage 0, called right after unit @p u's backward (units finish from the last to the first):
/// @p pending holds the requests of the buckets posted so far, so bucket pending.size() is the
/// next; when unit u completes it, posts its non-blocking all-reduce over its slice of @p grads,
/// appends the request to @p pending and returns true. (Exercise 1 is this function.)
bool post_ready_bucket(Communicator& comm, Tensor& grads, const std::vector<Bucket>& buckets, int u,
                       std::vector<std::unique_ptr<Request>>& pending);

/// ZeRO-1 after the backward: reduce-scatter the (weighted) local gradient @p grads [padded] into
/// @p grad_shard [padded/n], take one step of @p opt (built over this rank's slice of @p params
/// and @p grad_shard), then all-gather the updated slices into @p params through the staging
/// copy @p send [padded/n]. (Exercise 2 is this function.)
void zero1_update(Communicator& comm, Tensor& params, const Tensor& grads, Tensor& grad_shard, Tensor& send,
                  nn::AdamW& opt);

/// Seconds spent in the phases of the steps so far (this rank; sums over the steps after the
/// first, which is a warm-up: first-touch allocations of activations and MPI connections).
struct StepTimes {
  double forward = 0;       ///< forward pass (ZeRO-3 gathers included)
  double backward = 0;      ///< backward pass (anything communicated during it included)
  double exposed_comm = 0;  ///< communication after the backward (waiting for buckets, all-reduce, RS)
  double comm_lifetime = 0; ///< non-blocking calls: post-to-observed-completion time, summed
  double update = 0;        ///< optimizer step and the all-gather after it (stages 1, 2)
  int steps = 0;            ///< steps timed (every step but the first)
};

/// A data-parallel trainer over the ranks of one communicator.
class DpTrainer {
 public:
  /// Builds the layout, the parameters (replicas, or this rank's shard drawn from the seed), the
  /// optimizer and the unit model. Collective-free. @p comm is the data-parallel group.
  DpTrainer(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc);
  /// One step on this rank's sequences @p local, weighted @p weight = b_r / B in the global
  /// mean: zero grads, forward, backward (+ communication), AdamW. Returns the local mean loss.
  double step(const nn::Batch& local, double weight);
  /// The parameters in registration order [Ψ], full: a copy, or gathered shards (uncounted).
  Tensor dense_params();
  /// The global-batch gradient of the last step in registration order [Ψ] (uncounted gathers).
  Tensor dense_grads();
  /// Logits [b_r, T, V] of this rank's last forward.
  const Tensor& logits() const { return model_->logits(); }
  /// The flat layout.
  const FlatLayout& layout() const { return layout_; }
  /// The stage-0 buckets (empty otherwise, or when naive).
  const std::vector<Bucket>& buckets() const { return buckets_; }
  /// Bytes this rank holds, by kind.
  const MemoryBytes& memory() const { return mem_; }
  /// Accumulated phase times.
  const StepTimes& times() const { return times_; }
  /// The configuration.
  const DpConfig& config() const { return dc_; }
  /// What the first step did, in order: "fwd(u)", "bwd(u)", "AG(u)", "RS(u)", "post AR(bucket b)", ...
  const std::vector<std::string>& schedule() const { return schedule_; }

 private:
  Tensor alloc(std::int64_t numel, std::int64_t& category);
  UnitHooks hooks();
  void progress();
  void finish_buckets();
  /// A non-blocking call in flight (stages 2-3), traced on lane 1 from post to observed completion.
  struct InFlight {
    std::unique_ptr<Request> req;
    std::string name;
    double posted_us = 0;
  };
  void launch(InFlight& f, std::unique_ptr<Request> req, const std::string& name);
  void poll(InFlight& f);
  void complete(InFlight& f);
  void gather_unit(int u);
  void prefetch_unit(int u);
  void release_unit(int u);
  void reduce_unit(int u);
  int gslot_of(int u) const { return dc_.overlap ? u % 2 : 0; }
  void all_gather_params();
  Tensor gather_shards(const Tensor& shard);
  int slot_of(int u) const { return dc_.prefetch ? u % 2 : 0; }

  Ops* ops_;
  Communicator* comm_;
  ModelConfig cfg_;
  DpConfig dc_;
  FlatLayout layout_;
  int n_, r_;
  MemoryBytes mem_;
  Tensor params_, grads_;             // stages 0-2: full flat buffers (stage 2: grads_ unused)
  Tensor param_shard_, grad_shard_;   // stages 1-3: this rank's slices (stage 1-2 param: a view)
  Tensor send_;                       // stages 1-2: staging copy of the owned parameters for the all-gather
  Tensor ws_[2], gws_[2];             // stage 3: gather workspaces; stages 2-3: unit gradient workspaces
  int holder_[2] = {-1, -1};          // stage 3: which unit each workspace holds (-1: free)
  InFlight gathers_[2], reduces_[2];  // stage 3 prefetches, stages 2-3 reduce-scatters, per workspace
  std::unique_ptr<nn::AdamW> opt_;
  std::unique_ptr<UnitModel> model_;
  std::vector<Bucket> buckets_;
  std::vector<std::unique_ptr<Request>> pending_;  // stage 0: posted bucket all-reduces
  std::vector<double> posted_us_;                  // ... when each was posted (trace clock)
  std::vector<bool> done_;
  double weight_ = 1.0;
  StepTimes times_;
  int calls_ = 0;                      // steps taken
  std::vector<std::string> schedule_;  // recorded during the first step
  void note(const std::string& what, int u);
};

}  // namespace fivefold::ch02
