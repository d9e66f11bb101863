// SPDX-License-Identifier: MIT
/// @file steps.hpp
/// @brief Chapter 04's options, the state its steps share (the serial reference, the runs of
/// each schedule), the training run every step builds on, and the seven steps (step<k>_*.cpp).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chapters/04_pipeline_parallel/pp_runner.hpp"
#include "chapters/harness.hpp"
#include "common/model_config.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"

namespace fivefold::ch04 {

/// The chapter's options (the model's are ModelConfig's, from add_model_options).
struct Options {
  ModelConfig cfg = default_config();  ///< --vocab ... --seed, --experts ...
  int pp = 0;                  ///< --pp: pipeline stages (0 = the world size)
  int microbatches = 8;        ///< --microbatches m (steps 2-6)
  int virtual_stages = 2;      ///< --virtual-stages v (interleaved)
  bool v_given = false;        ///< --virtual-stages was on the command line
  std::string schedule;        ///< --schedule: a plain run of one schedule ("" = every step)
  int requests = 4;            ///< --requests: most requests in flight in step 7
  int prompt = 4;              ///< --prompt: prompt tokens in step 7
  int gen_tokens = 8;          ///< --gen-tokens: tokens generated per request in step 7
  /// ModelConfig's defaults with 8 layers (2 per stage at pp 4, 2 chunks of 1 at v 2), 4 steps.
  static ModelConfig default_config();
};

/// The serial reference: nn::Model trained on the whole batch of every step.
using SerialRun = nn::ReferenceRun;

/// What one pipelined training run produced on this rank.
struct TrainRun {
  std::string name;                   ///< "1f1b", "gpipe (one batch)", ...: its key in Lab::runs and the summary
  Schedule schedule;                  ///< the schedule it ran
  std::vector<double> losses;         ///< loss of each step
  StepRecord last;                    ///< the last step's passes, peak activations, time
  std::map<Route, OpCount> sent;    ///< what this rank sent, per route, over all steps
  std::map<std::string, Tensor> final;  ///< this rank's parameters after the last step
};

/// What the steps share.
struct Lab {
  Options o;                                 ///< the options
  std::unique_ptr<Communicator> pp;          ///< the pipeline group (every rank), counted as "pp"
  std::optional<SerialRun> serial;           ///< computed once, on first use
  std::map<std::string, TrainRun> runs;      ///< by schedule name, the runs of steps 2-5
  std::map<int, std::map<std::string, Tensor>> first_final;  ///< per m, the first run's parameters (all of them)
  std::map<int, std::string> first_name;     ///< ... and its schedule
};

/// The pipeline group: every rank of the world (world size = pp), counted as "pp".
Communicator& pp_group(Context& ctx, Lab& lab);
/// The batch of training step @p k (sequences k*B.., a fresh batch every step).
nn::Batch batch_of_step(const Options& o, int k);
/// The chapter's settings: ModelConfig's keys plus pp, microbatches, virtual_stages, schedule.
nlohmann::json config_json(const Options& o);
/// The serial reference run (made on first use).
const SerialRun& serial(Context& ctx, Lab& lab);
/// True when step @p k's schedule runs (every one, or the one --schedule names).
bool wants(const Lab& lab, ScheduleKind k);
/// Trains cfg.steps steps with @p kind over @p m microbatches (@p v chunks per rank) and checks
/// it: step-0 gradients, losses and final parameters against serial, the final parameters bit
/// for bit against the first run with the same m, the p2p traffic per pair against the layout,
/// the peak activations against the formula. Writes --dump when @p dump. Stores the run.
TrainRun& train(Context& ctx, Lab& lab, ScheduleKind kind, int m, int v, bool dump);
/// Steps 2-5: unless --schedule names another schedule or the layout cannot take @p kind
/// (then a line says why and nullptr is returned), narrates @p idea, trains with @p kind over
/// --microbatches (@p v chunks per rank; --dump when it is the dump's schedule) and shows the
/// run's timeline.
TrainRun* schedule_step(Context& ctx, Lab& lab, ScheduleKind kind, int v, const std::string& idea);
/// The run's timeline (built from the order its passes ran in), unit bubble vs the closed form.
void show_timeline(Context& ctx, const TrainRun& run);
/// Every rank's passes of the run's last step, gathered (collective): per rank, in order.
std::vector<std::vector<PassEvent>> gather_events(Context& ctx, const StepRecord& rec);
/// Per rank, the idle share of the step the events measured: 1 - the rank's busy time / the
/// step's span (the last pass's end over all ranks).
std::vector<double> measured_idle(const std::vector<std::vector<PassEvent>>& events);
/// The schedule whose dump a run writes: --schedule, or 1f1b.
ScheduleKind dump_schedule(const Lab& lab);

/// Step 1: cut the model into stages; one batch forward and backward through them.
void step1_cut(Context& ctx, Lab& lab);
/// Step 2: GPipe over m microbatches.
void step2_gpipe(Context& ctx, Lab& lab);
/// Step 3: 1F1B.
void step3_1f1b(Context& ctx, Lab& lab);
/// Step 4: interleaved 1F1B over v virtual stages per rank.
void step4_interleaved(Context& ctx, Lab& lab);
/// Step 5: zero bubble (ZB-H1): B and W apart.
void step5_zero_bubble(Context& ctx, Lab& lab);
/// Step 6: the schedules as pictures; measured, replayed and closed-form idle shares.
void step6_pictures(Context& ctx, Lab& lab);
/// Step 7: greedy generation through the pipeline; requests in flight.
void step7_inference(Context& ctx, Lab& lab);

}  // namespace fivefold::ch04
