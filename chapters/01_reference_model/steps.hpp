// SPDX-License-Identifier: MIT
/// @file steps.hpp
/// @brief Chapter 01's options, the state its steps share, small helpers, and the six steps
/// (each step is one short file, step<k>_*.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chapters/harness.hpp"
#include "common/model_config.hpp"
#include "nn/adamw.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"

namespace fivefold::ch01 {

/// The chapter's options (the model's are ModelConfig's, from add_model_options).
struct Options {
  ModelConfig cfg;             ///< --vocab ... --seed, --experts ... --aux-coef
  std::string data = "stream"; ///< --data: "stream" (a fresh batch every step) or "fixed"
  int prompt = 4;              ///< --prompt: prompt tokens in step 5
  int gen_tokens = 8;          ///< --gen-tokens: tokens generated in step 5
};

/// What the steps share: the model step 4 trained (step 5 generates from it; when step 5 runs
/// alone it trains one itself).
struct Lab {
  Options o;                              ///< the options
  std::unique_ptr<nn::Model> trained;     ///< the trained model, once there is one
  std::vector<double> losses;             ///< its loss per step
};

/// The batch of training step @p k: sequences k*B .. k*B+B-1 of the stream, or always 0..B-1
/// with --data fixed.
nn::Batch batch_of_step(const Options& o, int k);

/// The chapter's settings: ModelConfig's keys (docs/reference.md, "The dump") plus data, prompt,
/// gen_tokens.
nlohmann::json config_json(const Options& o);

/// Every parameter value of @p reg, concatenated in registration order into one tensor [N].
Tensor flat_values(Ops& ops, const nn::ParamRegistry& reg);
/// Every gradient of @p reg, concatenated in registration order into one tensor [N].
Tensor flat_grads(Ops& ops, const nn::ParamRegistry& reg);

/// Records a check that @p measured equals @p expected within relative @p tolerance.
void check_number(Context& ctx, const std::string& name, double measured, double expected, double tolerance);
/// With more than one rank: checks that every rank holds bitwise the same @p t as rank 0 (a
/// broadcast from rank 0, uncounted bookkeeping, then an exact comparison). Collective.
void check_ranks_agree(Context& ctx, const std::string& what, const Tensor& t);

/// Trains a fresh model for cfg.steps AdamW steps on batch_of_step(); fills lab.trained and
/// lab.losses. With @p narrate, prints a loss table; with --dump, writes the dump (rank 0).
void train(Context& ctx, Lab& lab, bool narrate);

/// Step 1: parameters: names, shapes, counts, bytes; formula vs registry.
void step1_parameters(Context& ctx, Lab& lab);
/// Step 2: the forward, block by block and (layer 0) op by op, with shapes.
void step2_forward(Context& ctx, Lab& lab);
/// Step 3: the loss and the backward; finite-difference spot check.
void step3_backward(Context& ctx, Lab& lab);
/// Step 4: AdamW training on the synthetic task; the loss falls.
void step4_training(Context& ctx, Lab& lab);
/// Step 5: greedy generation with a KV cache == full recomputation.
void step5_generation(Context& ctx, Lab& lab);
/// Step 6: memory: parameters, gradients, AdamW states, activations; formula vs measured.
void step6_memory(Context& ctx, Lab& lab);

}  // namespace fivefold::ch01
