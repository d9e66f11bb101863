// SPDX-License-Identifier: MIT
/// @file steps.hpp
/// @brief Chapter 03's options, the state its steps share, helpers, and the seven steps (each
/// step is one short file, step<k>_*.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chapters/03_tensor_parallel/tp_costs.hpp"
#include "chapters/03_tensor_parallel/tp_gather.hpp"
#include "chapters/03_tensor_parallel/tp_model.hpp"
#include "chapters/harness.hpp"
#include "common/model_config.hpp"
#include "nn/adamw.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"

namespace fivefold::ch03 {

/// The chapter's options (the model's are ModelConfig's, from add_model_options).
struct Options {
  ModelConfig cfg = default_config();  ///< --vocab ... --seed (dense model only)
  int tp = 0;                          ///< --tp: the TP degree (0 = the world size)
  std::string data = "stream";         ///< --data: stream (a fresh batch every step) or fixed
  int prompt = 4;                      ///< --prompt: prompt tokens in step 7
  int gen_tokens = 8;                  ///< --gen-tokens: tokens generated in step 7
  /// ModelConfig's defaults with 8 query and 4 kv heads (so tp = 1, 2, 4 all divide) and 6 steps.
  static ModelConfig default_config();
};

/// What the steps share.
struct Lab {
  Options o;                                 ///< the options
  std::unique_ptr<Communicator> tp;          ///< this rank's TP group (made on first use)
  std::unique_ptr<nn::Model> serial;         ///< the serial model trained by step 6
  std::unique_ptr<TpModel> model;            ///< the TP model trained by step 6
};

/// This rank's TP group: ranks r*tp .. r*tp+tp-1 of the world, counted as "tp" (split on first
/// use; with world > tp every group runs the same thing on the same data).
Communicator& tp_group(Context& ctx, Lab& lab);
/// The batch of training step @p k (sequences k*B.. with --data stream, always 0.. with fixed).
nn::Batch batch_of_step(const Options& o, int k);
/// The chapter's settings: ModelConfig's keys (docs/reference.md, "The dump") plus tp, data,
/// prompt, gen_tokens.
nlohmann::json config_json(const Options& o, int world_size);
/// A deterministic random fp32 tensor on the device, the same on every rank (name = RNG stream).
Tensor random_tensor(Ops& ops, const Options& o, const std::string& name, const Shape& shape);
/// Records the counted traffic @p counted (the TP group's counters, or a snapshot of them) of op
/// @p op against @p predicted for the piece @p label (the summary's group is "tp:<label>"), and
/// narrates it with the bytes a ring sends per rank over @p tp_size ranks; returns the entry.
CommEntry record(Context& ctx, const CommCounts& counted, int tp_size, const std::string& label, const std::string& op,
                 const CommCost& predicted);
/// "[2, 3]".
std::string shape_of(const Tensor& t);
/// Trains @p lab's serial and TP models for cfg.steps steps (step 6 does it narrated, step 7
/// quietly when run alone): fills lab.serial and lab.model. With @p narrate, prints the tables,
/// records the checks and the comm entries, and writes --dump.
void train(Context& ctx, Lab& lab, bool narrate);

/// Step 1: the column-parallel linear (gate_proj of layer 0).
void step1_column(Context& ctx, Lab& lab);
/// Step 2: the row-parallel linear (down_proj of layer 0).
void step2_row(Context& ctx, Lab& lab);
/// Step 3: the SwiGLU MLP, f and g.
void step3_mlp(Context& ctx, Lab& lab);
/// Step 4: attention by heads (GQA), and the degrees the model allows.
void step4_attention(Context& ctx, Lab& lab);
/// Step 5: vocab-parallel embedding and cross-entropy.
void step5_vocab(Context& ctx, Lab& lab);
/// Step 6: the whole model, AdamW steps, vs serial; comm per layer and per step.
void step6_model(Context& ctx, Lab& lab);
/// Step 7: greedy generation with the KV cache sharded by heads.
void step7_generation(Context& ctx, Lab& lab);

}  // namespace fivefold::ch03
