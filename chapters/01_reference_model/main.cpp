// SPDX-License-Identifier: MIT
// ch01_reference_model: the serial Llama-style model every later chapter checks itself
// against — its parameters, forward, hand-written backward, AdamW training on a synthetic task,
// KV-cache generation and memory, each step checked (finite differences, cache vs recompute,
// bytes vs formulas). The model is serial: with several ranks every rank runs the same model
// and the chapter checks that they agree bit for bit.
// Leaves out: mixed precision, gradient clipping, learning-rate schedules, sampling.
// Run: build/cpu/bin/ch01_reference_model                        (all steps, narrated)
//      build/cpu/bin/ch01_reference_model --experts 4 --topk 2 --capacity-factor 1.25
//      build/cpu/bin/ch01_reference_model --step 4 --steps 60 --dump /tmp/ch01 --json ch01.json
#include "chapters/01_reference_model/costs.hpp"
#include "chapters/01_reference_model/steps.hpp"
#include "common/check.hpp"

using namespace fivefold;

int main(int argc, char** argv) {
  ch01::Lab lab;
  ch01::Options& o = lab.o;
  ChapterSpec spec;
  spec.program = "ch01_reference_model";
  spec.chapter = "01_reference_model";
  spec.description =
      "Chapter 01: the reference model. A Llama-style decoder (RMSNorm, RoPE, GQA attention, SwiGLU or MoE) "
      "with a hand-written backward, trained with AdamW on a synthetic task; greedy generation with a KV cache; "
      "parameter, FLOP and memory counts checked against measurements.";
  spec.steps = {
      {1, "parameters", "names, shapes, counts and bytes; N from a formula",
       [&](Context& c) { ch01::step1_parameters(c, lab); }},
      {2, "the forward, with shapes", "embedding -> L x (attention + MLP) -> norm -> lm_head, op by op",
       [&](Context& c) { ch01::step2_forward(c, lab); }},
      {3, "loss and backward", "cross-entropy, the hand-written backward, a finite-difference check",
       [&](Context& c) { ch01::step3_backward(c, lab); }},
      {4, "AdamW training", "the optimizer step; the loss falls on the synthetic task",
       [&](Context& c) { ch01::step4_training(c, lab); }},
      {5, "generation with a KV cache", "prefill + one token per step == full recompute, token for token",
       [&](Context& c) { ch01::step5_generation(c, lab); }},
      {6, "memory", "bytes of parameters, gradients, AdamW states and activations: formula vs measured",
       [&](Context& c) { ch01::step6_memory(c, lab); }},
  };
  spec.add_options = [&](CLI::App& app) {
    add_model_options(app, o.cfg, /*with_moe=*/true);
    app.add_option("--data", o.data, "training batches: stream (a fresh batch each step) or fixed (the same one)")
        ->check(CLI::IsMember({"stream", "fixed"}));
    app.add_option("--prompt", o.prompt, "prompt tokens in step 5")->check(kPositive);
    app.add_option("--gen-tokens", o.gen_tokens, "tokens generated in step 5")->check(kNonNegative);
  };
  spec.validate = [&](const CommonOptions& opts, int) {
    o.cfg.validate();
    FIVEFOLD_USAGE_CHECK(o.prompt <= o.cfg.seq, "--prompt ", o.prompt, " is longer than --seq ", o.cfg.seq,
                         "; pass --prompt <= --seq (prompts are cut from training sequences)");
    FIVEFOLD_USAGE_CHECK(opts.dump.empty() || opts.step == 0 || opts.step == 4, "--dump ", opts.dump,
                         " is written by step 4 (training); run all steps or --step 4 with --dump");
  };
  spec.config = [&] { return ch01::config_json(o); };
  spec.has_dump = true;
  spec.memory = [&](int) {  // the serial reference and the parallel model side by side, at most
    return MemoryNeed{2 * ch01::training_bytes(o.cfg), "--batch, --seq, --dim, --ffn, --vocab or --layers"};
  };
  return run_chapter(argc, argv, spec);
}
