// SPDX-License-Identifier: MIT
/// @file dump.hpp
/// @brief Chapter 04's --dump: the full tensors of the run, gathered on rank 0 from the stages
/// that hold them (each parameter lives whole on one stage; the logits on the last).
#pragma once

#include <vector>

#include "chapters/01_reference_model/dump.hpp"
#include "chapters/04_pipeline_parallel/steps.hpp"

namespace fivefold::ch04 {

/// Writes a run's dump during its training (every method is collective over the pipeline group
/// when enabled, and does nothing otherwise).
class StageDump {
 public:
  /// For @p stage's run; when @p enabled, writes config.json and params/ now.
  StageDump(Context& ctx, Lab& lab, PipelineStage& stage, bool enabled);
  /// Step @p k's batch: inputs_sK / targets_sK (and inputs / targets for step 0).
  void step_begin(int k, const nn::Batch& batch);
  /// After step 0: logits.npy (the last stage's, kept by @p runner) and grads/.
  void step0(const PipelineRunner& runner);
  /// After the last step: loss.npy and final/.
  void finish(const std::vector<double>& losses);

 private:
  void params(const std::string& sub, bool grads);
  Context* ctx_;
  Lab* lab_;
  PipelineStage* stage_;
  bool enabled_;
  ch01::Dump out_;
};

}  // namespace fivefold::ch04
