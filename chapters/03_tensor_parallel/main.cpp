// SPDX-License-Identifier: MIT
// ch03_tensor_parallel: Megatron-style tensor parallelism, built up layer by layer and checked
// against the serial model at every step: column- and row-parallel linears, the f/g operators,
// the SwiGLU MLP, attention by heads (GQA), the vocab-parallel embedding and cross-entropy, the
// whole model trained with AdamW, and greedy generation with the KV cache sharded by heads. Every
// collective is counted and compared with the chapter's formulas.
// Leaves out: sequence parallelism (chapter 05), DP x TP (chapter 07), overlapping communication
// with compute, uneven splits (padding), fused kernels.
// Run: mpirun -np 2 build/cpu/bin/ch03_tensor_parallel                  (all steps, narrated)
//      mpirun -np 4 build/cpu/bin/ch03_tensor_parallel --step 4 --heads 8 --kv-heads 2
//      mpirun -np 4 build/cpu/bin/ch03_tensor_parallel --tp 2 --quiet --json ch03.json --dump /tmp/ch03
#include "chapters/01_reference_model/costs.hpp"
#include "chapters/03_tensor_parallel/steps.hpp"
#include "backends/runtime.hpp"
#include "common/check.hpp"

using namespace fivefold;

int main(int argc, char** argv) {
  ch03::Lab lab;
  ch03::Options& o = lab.o;
  ChapterSpec spec;
  spec.program = "ch03_tensor_parallel";
  spec.chapter = "03_tensor_parallel";
  spec.description =
      "Chapter 03: tensor parallelism (Megatron-LM). Each weight matrix is split over the --tp ranks of a group: "
      "column-parallel and row-parallel linears, one all-reduce per attention and MLP block in the forward and one "
      "in the backward, attention split by heads, the vocabulary split for the embedding and the cross-entropy. "
      "Every step is checked against the serial model and every collective against its formula.";
  spec.steps = {
      {1, "column-parallel linear", "W split by output rows; each rank computes its slice of y; dx needs an all-reduce",
       [&](Context& c) { ch03::step1_column(c, lab); }},
      {2, "row-parallel linear", "W split by input columns; partial outputs summed by one all-reduce",
       [&](Context& c) { ch03::step2_row(c, lab); }},
      {3, "the SwiGLU MLP: f and g", "column then row: no all-gather between; one all-reduce forward, one backward",
       [&](Context& c) { ch03::step3_mlp(c, lab); }},
      {4, "attention by heads", "H/tp query and Hkv/tp kv heads per rank (GQA); o_proj row-parallel",
       [&](Context& c) { ch03::step4_attention(c, lab); }},
      {5, "vocab-parallel embedding and loss", "masked lookup + all-reduce; cross-entropy without gathering logits",
       [&](Context& c) { ch03::step5_vocab(c, lab); }},
      {6, "the whole model, trained", "AdamW steps equal to serial; replicated norms stay identical; comm per step",
       [&](Context& c) { ch03::step6_model(c, lab); }},
      {7, "generation, KV cache by heads", "greedy tokens equal to serial; all-reduces per token vs the formula",
       [&](Context& c) { ch03::step7_generation(c, lab); }},
  };
  spec.add_options = [&](CLI::App& app) {
    add_model_options(app, o.cfg, /*with_moe=*/false);
    app.add_option("--tp", o.tp, "tensor-parallel degree: ranks per TP group")
        ->check(kPositive)
        ->default_str("world size");
    app.add_option("--data", o.data, "training batches: stream (a fresh batch each step) or fixed (the same one)")
        ->check(CLI::IsMember({"stream", "fixed"}));
    app.add_option("--prompt", o.prompt, "prompt tokens in step 7")->check(kPositive);
    app.add_option("--gen-tokens", o.gen_tokens, "tokens generated in step 7")->check(kPositive);
  };
  spec.validate = [&](const CommonOptions& opts, int world) {
    o.cfg.validate();
    FIVEFOLD_USAGE_CHECK(o.cfg.steps >= 1, "--steps ", o.cfg.steps, ": training needs at least one step; pass "
                         "--steps 1 or more");
    if (o.tp == 0) o.tp = world;
    ch03::validate_tp(o.cfg, o.tp, world);
    FIVEFOLD_USAGE_CHECK(o.prompt <= o.cfg.seq, "--prompt ", o.prompt, " is longer than --seq ", o.cfg.seq,
                         "; pass --prompt <= --seq (prompts are cut from training sequences)");
    FIVEFOLD_USAGE_CHECK(opts.dump.empty() || opts.step == 0 || opts.step == 6, "--dump ", opts.dump,
                         " is written by step 6 (training); run all steps or --step 6 with --dump");
  };
  spec.config = [&] { return ch03::config_json(o, MpiSession::world_size()); };
  spec.has_dump = true;
  spec.memory = [&](int) {  // the serial reference and the parallel model side by side, at most
    return MemoryNeed{2 * ch01::training_bytes(o.cfg), "--batch, --seq, --dim, --ffn, --vocab or --layers"};
  };
  return run_chapter(argc, argv, spec);
}
