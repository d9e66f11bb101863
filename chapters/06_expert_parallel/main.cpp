// SPDX-License-Identifier: MIT
// ch06_expert_parallel: the experts of every MoE layer spread over the ranks (--ep), each rank
// with its own whole sequences: routing per sequence as the serial model, dispatch and combine
// by all-to-all (variable sizes dropless, padded fixed buffers with capacity), load balance with
// and without the aux loss, EP x DP on the process grid, and MoE inference; every training run
// checked against the serial model and its exchanges against the bytes its routing implies.
// Leaves out: experts split by TP (chapter 07), token dropping policies other than first come
// first served, expert-choice routing, overlapping the all-to-all with compute.
// Run: mpirun -np 4 build/cpu/bin/ch06_expert_parallel                     (all steps, narrated)
//      mpirun -np 4 build/cpu/bin/ch06_expert_parallel --step 3 --capacity-factor 1.25
//      mpirun -np 4 build/cpu/bin/ch06_expert_parallel --ep 2 --dp 2 --order dp-ep-tp-sp-pp
#include "backends/runtime.hpp"
#include "chapters/01_reference_model/costs.hpp"
#include "chapters/06_expert_parallel/steps.hpp"
#include "common/check.hpp"

using namespace fivefold;

int main(int argc, char** argv) {
  ch06::Lab lab;
  ch06::Options& o = lab.o;
  ChapterSpec spec;
  spec.program = "ch06_expert_parallel";
  spec.chapter = "06_expert_parallel";
  spec.description =
      "Chapter 06: expert parallelism. The experts of every MoE layer are split over --ep ranks (E/ep each) and "
      "--dp copies of that layout; every rank holds whole sequences of the batch. Tokens go to their top-k "
      "experts by all-to-all and come back weighted by the gates. Every run is checked against the serial model, "
      "its all-to-all bytes against the formula from its routing.";
  spec.steps = {
      {1, "routing", "top-k, renormalised gates, capacity per sequence; tokens per expert, max/mean load, drops",
       [&](Context& c) { ch06::step1_routing(c, lab); }},
      {2, "dispatch and combine", "count all-to-all, all-to-allv of the rows, local experts, the reverse; equal to serial",
       [&](Context& c) { ch06::step2_dispatch(c, lab); }},
      {3, "capacity", "fixed padded buffers (GShard) vs variable sizes: bytes of each, padding waste measured",
       [&](Context& c) { ch06::step3_capacity(c, lab); }},
      {4, "load balance", "N steps with and without the aux loss: load, drops, and the time ranks wait for the busiest",
       [&](Context& c) { ch06::step4_balance(c, lab); }},
      {5, "EP x DP", "copies of the expert layout: dense gradients over ep x dp, expert gradients over dp",
       [&](Context& c) { ch06::step5_ep_dp(c, lab); }},
      {6, "MoE inference", "each new token to its top-k experts and back; bytes per token; greedy tokens equal serial",
       [&](Context& c) { ch06::step6_inference(c, lab); }},
  };
  spec.add_options = [&](CLI::App& app) {
    add_model_options(app, o.cfg, /*with_moe=*/true);
    app.add_option("--ep", o.ep, "ranks the experts are split over (ep x dp = the number of ranks)")
        ->check(kPositive)
        ->default_str("ranks / dp");
    app.add_option("--dp", o.dp, "copies of the expert layout (data parallel)")->check(kPositive)->capture_default_str();
    app.add_option("--order", o.order, "the grid's five axes, fastest-varying first")->capture_default_str();
    app.add_option("--balance-steps", o.balance_steps, "training steps of each run in step 4")
        ->check(kPositive)
        ->capture_default_str();
    app.add_option("--prompt", o.prompt, "prompt tokens in step 6")->check(kPositive)->capture_default_str();
    app.add_option("--gen-tokens", o.gen_tokens, "tokens generated in step 6")->check(kPositive)->capture_default_str();
  };
  spec.validate = [&](const CommonOptions& opts, int world) {
    o.cfg.validate();
    FIVEFOLD_USAGE_CHECK(o.cfg.steps >= 1, "--steps ", o.cfg.steps, ": training needs at least one step; pass "
                         "--steps 1 or more");
    FIVEFOLD_USAGE_CHECK(world % o.dp == 0 || o.ep != 0, "--dp ", o.dp, " does not divide the number of ranks ", world,
                         "; pass a --dp that divides it");
    if (o.ep == 0) o.ep = world / o.dp;
    const std::string bad = ch06::check_layout(o.cfg, o.ep, o.dp, world);
    FIVEFOLD_USAGE_CHECK(bad.empty(), bad);
    (void)ProcessGrid(AxisArray{1, 1, o.ep, o.dp, 1}, o.order, world);  // an unknown or repeated axis: one line
    const int dump_step = o.cfg.capacity_factor > 0 ? 3 : 2;
    FIVEFOLD_USAGE_CHECK(opts.dump.empty() || opts.step == 0 || opts.step == dump_step, "--dump ", opts.dump,
                         " is written by step ", dump_step, " (the ", dump_step == 3 ? "capacity" : "dropless",
                         " training; step 2 with --capacity-factor 0, step 3 with --capacity-factor > 0); run all "
                         "steps or --step ", dump_step, " with --dump");
  };
  spec.config = [&] { return ch06::config_json(o); };
  spec.has_dump = true;
  spec.memory = [&](int) {  // the serial reference and the parallel model side by side, at most
    return MemoryNeed{2 * ch01::training_bytes(o.cfg), "--batch, --seq, --dim, --ffn, --experts or --layers"};
  };
  return run_chapter(argc, argv, spec);
}
