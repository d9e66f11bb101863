// SPDX-License-Identifier: MIT
// ch05_sequence_parallel: activations split along the sequence over the ranks, four ways
// (Megatron-SP inside tensor parallelism, Ulysses, ring attention, zigzag), each trained and
// checked against the serial model: losses and parameters, communication counted against its
// formula, attention work per rank; activation memory vs T; long-context generation with the
// prompt prefilled by the ring and the KV cache sharded along the sequence.
// Leaves out: MoE under sequence parallelism (chapter 07), sp combined with dp/pp (chapter 07),
// striped attention, overlapping dK/dV hops with compute, load-balanced decode placement.
// Run: mpirun -np 4 build/cpu/bin/ch05_sequence_parallel                   (all steps, narrated)
//      mpirun -np 4 build/cpu/bin/ch05_sequence_parallel --step 4 --seq 128
//      mpirun -np 2 build/cpu/bin/ch05_sequence_parallel --sp-mode ulysses --quiet --json ch05.json
#include "backends/runtime.hpp"
#include "chapters/01_reference_model/costs.hpp"
#include "chapters/05_sequence_parallel/steps.hpp"
#include "common/check.hpp"

using namespace fivefold;

int main(int argc, char** argv) {
  ch05::Lab lab;
  ch05::Options& o = lab.o;
  ChapterSpec spec;
  spec.program = "ch05_sequence_parallel";
  spec.chapter = "05_sequence_parallel";
  spec.description =
      "Chapter 05: sequence and context parallelism. Every sequence is split along T over the ranks (--sp, the "
      "world size): position t lives on one rank. Megatron-SP splits the norms and residuals inside tensor "
      "parallelism; Ulysses exchanges positions for heads around attention; ring attention passes key/value "
      "blocks around the ranks and merges them with the online softmax; zigzag balances the causal work. Every "
      "mode is checked against the serial model, its communication against its formula.";
  spec.steps = {
      {1, "Megatron sequence parallelism", "TP's all-reduces become all-gather + reduce-scatter along T; norms hold T/tp",
       [&](Context& c) { ch05::step1_megatron(c, lab); }},
      {2, "Ulysses", "all-to-alls: T/sp positions of every head <-> all T positions of H/sp heads",
       [&](Context& c) { ch05::step2_ulysses(c, lab); }},
      {3, "ring attention", "k/v blocks around the ring, online softmax merge, dK/dV ride home",
       [&](Context& c) { ch05::step3_ring(c, lab); }},
      {4, "zigzag", "one early and one late chunk per rank: the same causal work on every rank, measured",
       [&](Context& c) { ch05::step4_zigzag(c, lab); }},
      {5, "memory and communication", "activation bytes per rank vs T for each mode; the modes side by side",
       [&](Context& c) { ch05::step5_memory(c, lab); }},
      {6, "long-context inference", "ring prefill, KV cache sharded along T, partial attentions merged per token",
       [&](Context& c) { ch05::step6_inference(c, lab); }},
  };
  spec.add_options = [&](CLI::App& app) {
    add_model_options(app, o.cfg, /*with_moe=*/false);
    app.add_option("--sp", o.sp, "ranks the sequence is split over (must equal the number of ranks)")
        ->check(kPositive)
        ->default_str("world size");
    app.add_option("--sp-mode", o.mode, "a plain run of one mode: megatron, ulysses, ring, zigzag")
        ->default_str("every step");
    app.add_option("--tp", o.tp, "the tp group of --sp-mode megatron (must equal the number of ranks)")
        ->check(kPositive)
        ->default_str("world size");
    app.add_option("--prompt", o.prompt, "prompt tokens in step 6 (the long context)")
        ->check(kPositive)
        ->capture_default_str();
    app.add_option("--gen-tokens", o.gen_tokens, "tokens generated in step 6")->check(kPositive)->capture_default_str();
  };
  spec.validate = [&](const CommonOptions& opts, int world) {
    o.cfg.validate();
    FIVEFOLD_USAGE_CHECK(o.cfg.steps >= 1, "--steps ", o.cfg.steps, ": training needs at least one step; pass "
                         "--steps 1 or more");
    if (o.sp == 0) o.sp = world;
    FIVEFOLD_USAGE_CHECK(o.sp == world, "--sp ", o.sp, " must equal the number of ranks ", world, "; run mpirun -np ",
                         o.sp, " or pass --sp ", world);
    const bool megatron = !o.mode.empty() && ch05::parse_sp_mode(o.mode) == ch05::SpMode::megatron;
    FIVEFOLD_USAGE_CHECK(o.tp == 0 || megatron, "--tp ", o.tp, " applies to --sp-mode megatron only (the other "
                         "modes split over --sp); drop --tp or pass --sp-mode megatron");
    if (o.tp == 0) o.tp = world;
    FIVEFOLD_USAGE_CHECK(o.tp == world, "--tp ", o.tp, " must equal the number of ranks ", world,
                         " (Megatron-SP splits the sequence over the tp group); pass --tp ", world);
    if (!o.mode.empty()) {
      const std::string bad = ch05::check_layout(ch05::parse_sp_mode(o.mode), o.cfg, world);
      FIVEFOLD_USAGE_CHECK(bad.empty(), bad);
    }
    if (opts.step >= 1 && opts.step <= 4) {  // a step that trains one mode, run alone: it must be able to
      const std::string bad = ch05::check_layout(static_cast<ch05::SpMode>(opts.step - 1), o.cfg, world);
      FIVEFOLD_USAGE_CHECK(bad.empty(), "--step ", opts.step, " cannot run at this layout: ", bad);
    }
    FIVEFOLD_USAGE_CHECK((opts.step != 0 && opts.step != 6) || o.prompt % world == 0, "--prompt ", o.prompt,
                         " cannot be prefilled over ", world, " ranks: it needs a multiple of ", world,
                         "; pass --prompt ", std::max(world, o.prompt / world * world));
    const int dump_step = 1 + static_cast<int>(o.mode.empty() ? ch05::SpMode::ring : ch05::parse_sp_mode(o.mode));
    FIVEFOLD_USAGE_CHECK(opts.dump.empty() || opts.step == 0 || opts.step == dump_step, "--dump ", opts.dump,
                         " is written by step ", dump_step, " (the ", o.mode.empty() ? "ring" : o.mode,
                         " training); run all steps or --step ", dump_step, " with --dump");
  };
  spec.config = [&] { return ch05::config_json(o); };
  spec.has_dump = true;
  spec.memory = [&](int) {  // the serial reference and a parallel model side by side, at most
    return MemoryNeed{2 * ch01::training_bytes(o.cfg), "--batch, --seq, --dim, --ffn, --vocab or --layers"};
  };
  return run_chapter(argc, argv, spec);
}
