// SPDX-License-Identifier: MIT
/// @file steps.hpp
/// @brief Chapter 02's options, the state its steps share (the serial reference run), the
/// data-parallel training run every step builds on, and the seven steps (step<k>_*.cpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chapters/02_data_parallel/dp_trainer.hpp"
#include "chapters/harness.hpp"
#include "common/model_config.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"

namespace fivefold::ch02 {

/// The chapter's options (the model's are ModelConfig's, from add_model_options).
struct Options {
  ModelConfig cfg;              ///< --vocab ... --seed (dense model; --steps defaults to 5 here)
  int zero = -1;                ///< --zero K: a plain run of stage K only (-1 = every step)
  double bucket_mb = 0.05;      ///< --bucket-mb: stage-0 bucket size in MiB (0 = naive, per parameter)
  bool no_overlap = false;      ///< --no-overlap: reduce the buckets after the backward
  bool no_prefetch = false;     ///< --no-prefetch: ZeRO-3 gathers each unit only when it runs
  std::string data = "stream";  ///< --data: "stream" (a fresh global batch every step) or "fixed"
  int requests = 16;            ///< --requests: inference requests in step 7
  int gen_tokens = 8;           ///< --gen-tokens: tokens generated per request in step 7
};

/// The serial reference: nn::Model + AdamW on the whole global batch.
struct SerialRun {
  std::vector<double> losses;  ///< loss of each step (before its update)
  Tensor grads0;               ///< dense [Ψ] gradient of step 0
  Tensor final;                ///< dense [Ψ] parameters after the last step
};

/// What one data-parallel training run produced.
struct RunResult {
  std::string group;           ///< name of its communicator ("dp/zero1", ...)
  std::vector<double> losses;  ///< global loss of each step
  MemoryBytes memory;          ///< bytes this rank held, by kind
  StepTimes times;             ///< this rank's phase times
  CommCounts counts;           ///< what it communicated
  int buckets = 0;             ///< stage-0 buckets
  std::vector<std::string> schedule;  ///< what the first step did, in order (DpTrainer::schedule)
};

/// @p schedule as lines of at most @p width characters, each indented by two spaces.
std::string wrap_schedule(const std::vector<std::string>& schedule, std::size_t width = 100);

/// What the steps share.
struct Lab {
  Options o;                        ///< the options
  std::optional<SerialRun> serial;  ///< computed once, on first use
  Tensor first_final;               ///< final parameters of the first run, for "stages agree"
  std::string first_name;           ///< ... and its name
  bool dumped = false;              ///< --dump written (by the first run)
};

/// The stage a plain run (--zero K) selects, as the step that teaches it (1, 2, 3, 4 or 5).
int plain_run_step(const Options& o);
/// True when step @p k should be skipped because of --zero (prints why on rank 0).
bool skipped(Context& ctx, const Lab& lab, int k);

/// The chapter's settings for config.json / Summary::config: ModelConfig's keys plus dp, zero,
/// bucket_mb, overlap, prefetch, data, requests, gen_tokens.
nlohmann::json config_json(const Options& o, int dp);
/// The global batch of step @p k: sequences k*B .. k*B+B-1 of the stream (0.. with --data fixed).
nn::Batch global_batch(const Options& o, int k);
/// This rank's part of global_batch(o, k): sequences offset(r) .. offset(r)+count(r)-1 of it.
nn::Batch local_batch(const Options& o, int k, const BatchSplit& split, int r);
/// The serial reference run (computed on first use; every rank computes it, it is small).
const SerialRun& serial_run(Context& ctx, Lab& lab);

/// Trains with @p dc for cfg.steps steps in a new communicator "dp/<name>", checks the losses,
/// the step-0 gradients and the final parameters against the serial run (and against the first
/// run of the process), records counted vs predicted communication and the memory check, and
/// writes --dump if it is the first run. Collective.
RunResult train_dp(Context& ctx, Lab& lab, const DpConfig& dc, const std::string& name);
/// The DpConfig of --zero @p zero with the command line's bucket/overlap/prefetch settings.
DpConfig dp_config(const Options& o, int zero);

/// Step 1: naive DDP: replicas, a slice of the batch each, all-reduce per parameter.
void step1_naive_ddp(Context& ctx, Lab& lab);
/// Step 2: gradient buckets reduced with iall_reduce while the backward goes on; hidden share.
void step2_buckets(Context& ctx, Lab& lab);
/// Step 3: ZeRO-1: optimizer states sharded; reduce-scatter, update the shard, all-gather.
void step3_zero1(Context& ctx, Lab& lab);
/// Step 4: ZeRO-2: gradients sharded too, reduce-scattered unit by unit during the backward.
void step4_zero2(Context& ctx, Lab& lab);
/// Step 5: ZeRO-3 / FSDP: parameters sharded, gathered per unit before use, with prefetch.
void step5_zero3(Context& ctx, Lab& lab);
/// Step 6: memory and communication per stage: measured and counted vs the formulas.
void step6_costs(Context& ctx, Lab& lab);
/// Step 7: inference on replicas: throughput scales with the ranks, latency does not.
void step7_inference(Context& ctx, Lab& lab);

}  // namespace fivefold::ch02
