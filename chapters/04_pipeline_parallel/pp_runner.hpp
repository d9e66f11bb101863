// SPDX-License-Identifier: MIT
/// @file pp_runner.hpp
/// @brief A pipeline stage (the layers one rank holds, with their parameters) and the runner
/// that executes a schedule's passes on it with real sends and receives: one training step.
///
/// Nothing here computes a layer: the stage is the one decoder (nn/decoder.hpp) holding the
/// rank's chunks, each pass is Chunk::forward / backward / backward_input / backward_weight on
/// its own activations, and the step around the passes is the synchroniser's (zero the
/// gradients; accumulate them over the microbatches; finish; update), as in nn::train_step.
///
/// Leaves out: overlapping a send with the next pass's compute beyond what a posted send gives,
/// activation recomputation, tensor parallelism inside a stage (chapter 07 composes it).
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "chapters/04_pipeline_parallel/pp_link.hpp"
#include "chapters/04_pipeline_parallel/pp_schedule.hpp"
#include "nn/data.hpp"
#include "nn/decoder.hpp"
#include "nn/train_step.hpp"

namespace fivefold::ch04 {

/// True when parameter @p name belongs to the layers [first, last) of @p chunks (the embedding
/// to the chunk that starts at layer 0, the final norm and lm_head to the one that ends at L).
bool chunk_holds(const std::vector<std::pair<int, int>>& chunks, int layers, const std::string& name);

/// The parameters of one rank's chunks, full tensors, drawn as the serial model draws them.
struct StageStorage {
  /// The parameters of @p chunks of @p cfg on ops.device().
  StageStorage(Ops& ops, const ModelConfig& cfg, const std::vector<std::pair<int, int>>& chunks);
  nn::ParamRegistry params_;  ///< the stage's parameters only
  nn::SerialParts parts_;     ///< the serial parts
};

/// Rank @p rank's stage of a pipeline of @p p ranks with @p v chunks each (rank_chunks()).
class PipelineStage : private StageStorage, public nn::Decoder {
 public:
  /// Validates @p cfg, registers the stage's parameters and builds its chunks.
  PipelineStage(Ops& ops, const ModelConfig& cfg, int p, int v, int rank);
  /// The stage's parameters and gradients.
  nn::ParamRegistry& params() { return params_; }
};

/// One pass as the runner ran it (seconds from the step's start on this rank).
struct PassEvent {
  Action a;            ///< the pass
  double start = 0.0;  ///< after its input arrived
  double end = 0.0;    ///< after its compute (device synchronised)
};

/// What one step did on this rank.
struct StepRecord {
  std::vector<PassEvent> events;   ///< the passes in the order they ran
  int peak_passes = 0;             ///< most (chunk, microbatch) passes holding activations at once
  std::int64_t peak_bytes = 0;     ///< most tensor bytes those activations held (between passes)
  std::int64_t first_pass_bytes = 0;  ///< bytes the step's first forward kept (its input included)
  double seconds = 0.0;            ///< the step on this rank, from a common start (a barrier)
  double ce = 0.0;                 ///< this rank's cross-entropy, mean over its microbatches (last stage)
  double aux = 0.0;                ///< this rank's aux losses, mean over its microbatches
};

/// How the passes of a step see their data when the stage is one rank of a larger layout
/// (chapter 07): the defaults are a pipeline alone, which holds every token of its microbatches.
struct PassSetup {
  Tensor pos;               ///< int32 [T_l] global positions of the local tokens (default 0..T-1)
  double loss_scale = 0.0;  ///< Pass::loss_scale (default: 1/(m b T) with m > 1, else the pass mean)
  double aux_scale = 0.0;   ///< Pass::aux_scale (default: 1/m)
  std::int64_t act_len = 0; ///< positions of the [b, T_a, C] tensors between stages (default: T)
};

/// Executes a schedule on one stage.
class PipelineRunner {
 public:
  /// Runs @p schedule's passes of this rank (link.group().rank()) on @p stage, whose chunks
  /// must be rank_chunks(L, p, v, rank).
  PipelineRunner(nn::Decoder& stage, StageLink& link, Schedule schedule);
  /// One training step over @p microbatches (schedule.m of them, equal shapes): zero_grad, the
  /// passes, the sends completed, sync.finish(), sync.update(). Returns the step's loss (mean
  /// cross-entropy over all tokens plus every stage's aux losses), the same on every rank.
  double step(nn::Synchroniser& sync, const std::vector<nn::Batch>& microbatches, StepRecord* record = nullptr);
  /// Sets how the passes see their data (see PassSetup); {} restores the defaults.
  void set_pass_setup(PassSetup setup) { setup_ = std::move(setup); }
  /// Keeps a copy of each microbatch's logits (last stage) from the next steps on (for a dump).
  void keep_logits(bool on) { keep_logits_ = on; }
  /// The logits of the last step's microbatches (last stage, with keep_logits).
  const std::vector<Tensor>& logits() const { return logits_; }
  /// The schedule.
  const Schedule& schedule() const { return s_; }

 private:
  nn::Decoder* stage_;
  StageLink* link_;
  Schedule s_;
  int rank_;
  bool keep_logits_ = false;
  std::vector<Tensor> logits_;
  PassSetup setup_;
};

/// The microbatches of @p batch: @p m slices of B/m sequences each.
std::vector<nn::Batch> split_batch(const nn::Batch& batch, int m);

}  // namespace fivefold::ch04
