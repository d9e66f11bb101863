// SPDX-License-Identifier: MIT
/// @file steps.hpp
/// @brief Chapter 05's options, the state its steps share (the serial reference, the runs of
/// each mode), the training run every step builds on, and the six steps (step<k>_*.cpp).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chapters/05_sequence_parallel/sp_model.hpp"
#include "chapters/harness.hpp"
#include "common/model_config.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"

namespace fivefold::ch05 {

/// The chapter's options (the model's are ModelConfig's, from add_model_options).
struct Options {
  ModelConfig cfg = default_config();  ///< --vocab ... --seed (dense)
  int sp = 0;                          ///< --sp: ranks the sequence is split over (0 = the world size)
  int tp = 0;                          ///< --tp: with --sp-mode megatron, the tp group (= --sp)
  std::string mode;                    ///< --sp-mode: a plain run of one mode ("" = every step)
  int prompt = 48;                     ///< --prompt: prompt tokens in step 6 (the long context)
  int gen_tokens = 8;                  ///< --gen-tokens: tokens generated in step 6
  /// ModelConfig's defaults with T = 64, 8 query and 4 kv heads, 4 layers, 3 steps.
  static ModelConfig default_config();
};

/// The serial reference: nn::Model trained on the whole batch of every step.
using SerialRun = nn::ReferenceRun;

/// What one mode's training run produced on this rank.
struct ModeRun {
  std::vector<double> losses;  ///< loss of each step
  RingWork work;              ///< attention work of the last step (ring, zigzag)
};

/// What the steps share.
struct Lab {
  Options o;                                ///< the options
  std::unique_ptr<Communicator> sp;         ///< the group (every rank), counted as "sp"
  std::unique_ptr<Communicator> tp;         ///< the same ranks as Megatron-SP's tp group, counted as "tp"
  std::optional<SerialRun> serial;          ///< computed once, on first use
  std::map<std::string, ModeRun> runs;      ///< by mode name
};

/// The group of @p mode (every rank of the world): "tp" for megatron, "sp" otherwise.
Communicator& group(Context& ctx, Lab& lab, SpMode mode);
/// The batch of training step @p k (sequences k*B.., a fresh batch every step).
nn::Batch batch_of_step(const Options& o, int k);
/// The chapter's settings: ModelConfig's keys plus sp, tp, sp_mode, prompt, gen_tokens.
nlohmann::json config_json(const Options& o);
/// The serial reference run (made on first use).
const SerialRun& serial(Context& ctx, Lab& lab);
/// True when @p mode's step runs (every one, or the one --sp-mode names).
bool wants(const Lab& lab, SpMode mode);
/// Steps 1-4: unless --sp-mode names another or the layout cannot take @p mode (a line says
/// why), narrates @p idea, trains cfg.steps steps with @p mode and checks them: losses and final
/// parameters against serial, communication counted against the mode's formula. Writes --dump
/// when the mode is the dump's. Returns the run, or nullptr when it did not run.
ModeRun* train(Context& ctx, Lab& lab, SpMode mode, const std::string& idea);
/// The mode whose training writes --dump: --sp-mode, or ring.
SpMode dump_mode(const Lab& lab);

/// The attention work per rank of the ring and zigzag runs so far (counted, expected, timed,
/// next to the ideal); the run of @p ran checked against the layout (zigzag's equal on every rank).
void show_work(Context& ctx, Lab& lab, SpMode ran);

/// Step 1: Megatron sequence parallelism.
void step1_megatron(Context& ctx, Lab& lab);
/// Step 2: Ulysses.
void step2_ulysses(Context& ctx, Lab& lab);
/// Step 3: ring attention.
void step3_ring(Context& ctx, Lab& lab);
/// Step 4: zigzag, and the work per rank of ring vs zigzag.
void step4_zigzag(Context& ctx, Lab& lab);
/// Step 5: memory and communication of the modes vs T and sp.
void step5_memory(Context& ctx, Lab& lab);
/// Step 6: long-context inference: context-parallel prefill, decoding over a sharded KV cache.
void step6_inference(Context& ctx, Lab& lab);

}  // namespace fivefold::ch05
