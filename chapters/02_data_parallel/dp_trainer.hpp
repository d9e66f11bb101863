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
/// Gradient accumulation: nn::train_step over several microbatches synchronises only in the
/// last one's backward; stages 0 and 1 accumulate into their full gradient, stages 2 and 3
/// (whose gradients are reduce-scattered unit by unit during the backward) refuse.
/// What it leaves out: mixed precision, CPU offload, overlap of the optimizer step with
/// communication.
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
#include "nn/train_step.hpp"

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

using nn::StepTimes;

/// A data-parallel trainer over the ranks of one communicator: the storage of its ZeRO stage,
/// the UnitModel over it, and the Synchroniser that the one training step (nn::train_step) calls
/// around the model. One derived type per idea: Ddp (ddp.hpp), Zero1, Zero2 and Zero3 (zero.hpp).
/// This base keeps what they share: the layout, memory accounting, the optimizer, the trace and
/// timing bookkeeping of non-blocking calls, and the uncounted gathers for the checks.
class DpTrainer : public nn::Synchroniser {
 public:
  /// The trainer of stage dc.zero: builds the layout, the parameters (replicas, or this rank's
  /// shard drawn from the seed), the optimizer and the unit model. Collective-free. @p comm is
  /// the data-parallel group.
  static std::unique_ptr<DpTrainer> make(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc);
  /// One step on this rank's sequences @p local, weighted @p weight = b_r / B in the global
  /// mean: nn::train_step over the unit model with this synchroniser. Returns the local mean loss.
  double step(const nn::Batch& local, double weight);
  /// The same step over this rank's sequences cut into @p microbatches (gradients accumulated,
  /// synchronised in the last one's backward; stages 0 and 1 only, see the file comment).
  double step(const std::vector<nn::Batch>& microbatches, double weight);
  /// The parameters in registration order [Ψ], full: a copy, or gathered shards (uncounted).
  virtual Tensor dense_params() = 0;
  /// The global-batch gradient of the last step in registration order [Ψ] (uncounted gathers).
  virtual Tensor dense_grads() = 0;
  /// Logits [b_r, T, V] of this rank's last forward.
  const Tensor& logits() const { return model_->logits(); }
  /// The flat layout.
  const FlatLayout& layout() const { return layout_; }
  /// The stage-0 buckets (empty otherwise, or when naive).
  virtual const std::vector<Bucket>& buckets() const { return no_buckets_; }
  /// Bytes this rank holds, by kind.
  const MemoryBytes& memory() const { return mem_; }
  /// Accumulated phase times.
  const StepTimes& times() const { return times_; }
  /// The configuration.
  const DpConfig& config() const { return dc_; }
  /// What the first step did, in order: "fwd(u)", "bwd(u)", "AG(u)", "RS(u)", "post AR(bucket b)", ...
  const std::vector<std::string>& schedule() const { return schedule_; }

 protected:
  /// The shared state of a stage over @p layout (the derived type allocates its storage, then
  /// calls build_model).
  DpTrainer(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc, FlatLayout layout);
  /// A zero [numel] tensor on the device, its bytes counted in @p category.
  Tensor alloc(std::int64_t numel, std::int64_t& category);
  /// AdamW will update @p p from @p g (its m and v counted as optimizer memory).
  void add_to_optimizer(const Tensor& p, const Tensor& g);
  /// The unit model over @p values[u] / @p grads[u] (see UnitModel).
  void build_model(const std::vector<Tensor>& values, const std::vector<Tensor>& grads);
  /// Records "what(unit u)" (just @p what when u < 0) in the first step's schedule.
  void note(const std::string& what, int u);
  /// Unit u's gradient scaled by the rank's weight b_r/B, so the SUM over ranks is the global mean.
  void weigh(Tensor& unit_grads);
  /// A non-blocking call in flight, traced on lane 1 from post to observed completion.
  struct InFlight {
    std::unique_ptr<Request> req;  ///< the call (null when none is in flight)
    std::string name;              ///< trace name
    double posted_us = 0;          ///< when it was posted (trace clock)
  };
  /// Starts tracking @p req as @p f.
  void launch(InFlight& f, std::unique_ptr<Request> req, const std::string& name);
  /// Completes @p f if it has finished (an MPI progress call).
  void poll(InFlight& f);
  /// Waits for @p f (if any is in flight) and traces its life.
  void complete(InFlight& f);
  /// A non-blocking call posted at @p posted_us was just seen complete: traced on lane 1 and
  /// added to times().comm_lifetime.
  void completed(const std::string& name, double posted_us);
  /// The full flat buffer [padded] from every rank's @p shard (uncounted: checks and dumps only).
  Tensor gather_shards(const Tensor& shard);

  Ops* ops_;                                 ///< compute
  Communicator* comm_;                       ///< the data-parallel group
  ModelConfig cfg_;                          ///< the model
  DpConfig dc_;                              ///< the stage and its options
  FlatLayout layout_;                        ///< where every parameter lives in a flat buffer
  int n_;                                    ///< ranks in the group
  int r_;                                    ///< this rank
  MemoryBytes mem_;                          ///< what this rank allocated
  std::unique_ptr<nn::AdamW> opt_;           ///< over this rank's parameters (or shard)
  std::unique_ptr<UnitModel> model_;         ///< the model over the stage's storage
  int calls_ = 0;                            ///< steps taken

 private:
  double weight_ = 1.0;
  StepTimes times_;
  std::vector<std::string> schedule_;  // recorded during the first step
  std::vector<Bucket> no_buckets_;
};

}  // namespace fivefold::ch02
