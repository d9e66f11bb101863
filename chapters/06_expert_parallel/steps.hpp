// SPDX-License-Identifier: MIT
/// @file steps.hpp
/// @brief Chapter 06's options, the state its steps share (the process grid's groups, the serial
/// references), the training run the steps build on, and the six steps (step<k>_*.cpp).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/grid_comms.hpp"
#include "chapters/06_expert_parallel/ep_model.hpp"
#include "chapters/harness.hpp"
#include "common/model_config.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"

namespace fivefold::ch06 {

/// The chapter's options (the model's are ModelConfig's, from add_model_options).
struct Options {
  ModelConfig cfg = default_config();  ///< --vocab ... --experts --topk --capacity-factor --aux-coef --moe-every
  int ep = 0;                          ///< --ep: ranks the experts are split over (0 = world / dp)
  int dp = 1;                          ///< --dp: copies of the expert layout
  std::string order = "tp-sp-ep-dp-pp";  ///< --order: the grid's axes, fastest first
  int balance_steps = 20;              ///< --balance-steps: steps of step 4
  int prompt = 4;                      ///< --prompt: prompt tokens in step 6
  int gen_tokens = 6;                  ///< --gen-tokens: tokens generated in step 6
  /// ModelConfig's defaults with 8 experts (top-2, dropless), every layer MoE, T = 16, 3 steps.
  static ModelConfig default_config();
};

/// The serial reference of one configuration: losses, final parameters, and the routing of
/// every step's MoE layers (the formula of the exchanges' bytes comes from it).
struct SerialRun : nn::ReferenceRun {
  std::vector<std::vector<nn::Routing>> routing;  ///< per step, per MoE layer
};

/// One layout's groups: ep, dp and data (ep x dp) from the process grid.
struct Groups {
  std::unique_ptr<GridComms> comms;  ///< the grid's communicators
  /// The ranks that split the experts.
  Communicator& ep() const { return comms->get("ep"); }
  /// The ranks that hold the same experts (the expert-data-parallel group).
  Communicator& dp() const { return comms->get("dp"); }
  /// Every rank that holds other sequences (ep x dp).
  Communicator& data() const { return comms->get("ep-dp"); }
};

/// What one expert-parallel training run produced on this rank.
struct EpRun {
  std::vector<double> losses;  ///< per step
  EpStats stats;              ///< summed over the steps
};

/// What the steps share.
struct Lab {
  Options o;                                     ///< the options
  std::map<std::pair<int, int>, Groups> groups;  ///< by (ep, dp)
  std::map<std::string, SerialRun> serial;       ///< by configuration key
};

/// The groups of the layout @p ep x @p dp in --order (made on first use; collective).
Groups& groups(Context& ctx, Lab& lab, int ep, int dp);
/// The batch of training step @p k.
nn::Batch batch_of_step(const ModelConfig& cfg, int k);
/// The chapter's settings.
nlohmann::json config_json(const Options& o);
/// The serial reference of @p cfg (made on first use).
const SerialRun& serial(Context& ctx, Lab& lab, const ModelConfig& cfg);
/// Trains @p cfg with experts over @p ep and @p dp copies for cfg.steps steps, checks it against
/// serial (losses, this rank's parameters) and the exchanges' bytes against the formula from the
/// serial routing; writes --dump when @p dump. @p label names the run in the checks.
EpRun train(Context& ctx, Lab& lab, const ModelConfig& cfg, int ep, int dp, const std::string& label, bool dump);

/// Step 1: routing.
void step1_routing(Context& ctx, Lab& lab);
/// Step 2: dispatch and combine (dropless, variable sizes).
void step2_dispatch(Context& ctx, Lab& lab);
/// Step 3: capacity: fixed padded buffers vs variable sizes.
void step3_capacity(Context& ctx, Lab& lab);
/// Step 4: load balance with and without the aux loss.
void step4_balance(Context& ctx, Lab& lab);
/// Step 5: EP x DP.
void step5_ep_dp(Context& ctx, Lab& lab);
/// Step 6: MoE inference.
void step6_inference(Context& ctx, Lab& lab);

}  // namespace fivefold::ch06
