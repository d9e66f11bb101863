// SPDX-License-Identifier: MIT
// ch04_pipeline_parallel: the model cut by layers into stages, one per rank, trained with the
// four classic schedules (GPipe, 1F1B, interleaved 1F1B, ZB-H1) and checked against the serial
// model: losses, gradients and parameters; messages per pair of stages counted against the
// layout; the bubble of every schedule drawn from the real run's order, measured, replayed and
// against its closed form; peak activations against the formula; greedy generation through
// the stages with requests in flight.
// Leaves out: DP or TP inside a stage (chapter 07), activation recomputation, ZB-H2/ZB-V,
// overlapping sends with compute beyond a posted send.
// Run: mpirun -np 4 build/cpu/bin/ch04_pipeline_parallel                     (all steps, narrated)
//      mpirun -np 4 build/cpu/bin/ch04_pipeline_parallel --step 5 --microbatches 8
//      mpirun -np 2 build/cpu/bin/ch04_pipeline_parallel --schedule zb-h1 --quiet --json ch04.json
#include "chapters/01_reference_model/costs.hpp"
#include "backends/runtime.hpp"
#include "chapters/04_pipeline_parallel/steps.hpp"
#include "common/check.hpp"

using namespace fivefold;

int main(int argc, char** argv) {
  ch04::Lab lab;
  ch04::Options& o = lab.o;
  CLI::Option* v_opt = nullptr;
  ChapterSpec spec;
  spec.program = "ch04_pipeline_parallel";
  spec.chapter = "04_pipeline_parallel";
  spec.description =
      "Chapter 04: pipeline parallelism. The model is cut by layers into --pp stages, one per rank; activations "
      "[b, T, C] travel forward between stages and their gradients back. The batch is cut into --microbatches, "
      "scheduled by GPipe, 1F1B, interleaved 1F1B (--virtual-stages) or zero bubble (ZB-H1). Every schedule is "
      "checked against the serial model, its messages against the layout, its bubble and peak activations against "
      "their formulas.";
  spec.steps = {
      {1, "cut and pass", "layers split into stages; one batch forward and back with send/recv of [b, T, C]",
       [&](Context& c) { ch04::step1_cut(c, lab); }},
      {2, "GPipe", "m microbatches: all forwards, then all backwards; bubble (p-1)/(m+p-1); m activations held",
       [&](Context& c) { ch04::step2_gpipe(c, lab); }},
      {3, "1F1B", "warm-up, one forward one backward, cool-down; same bubble, min(p-s, m) activations held",
       [&](Context& c) { ch04::step3_1f1b(c, lab); }},
      {4, "interleaved 1F1B", "v chunks per rank: bubble (p-1)/(vm+p-1) for 2(vp-1)m messages",
       [&](Context& c) { ch04::step4_interleaved(c, lab); }},
      {5, "zero bubble (ZB-H1)", "backward split into B and W; deferred W's fill the cool-down: (p-1)/(3m+p-1)",
       [&](Context& c) { ch04::step5_zero_bubble(c, lab); }},
      {6, "the schedules as pictures", "idle share per rank: measured, replayed with measured pass times, closed form",
       [&](Context& c) { ch04::step6_pictures(c, lab); }},
      {7, "pipelined inference", "KV cache per stage; greedy tokens equal serial; requests in flight fill the pipe",
       [&](Context& c) { ch04::step7_inference(c, lab); }},
  };
  spec.add_options = [&](CLI::App& app) {
    add_model_options(app, o.cfg, /*with_moe=*/true);
    app.add_option("--pp", o.pp, "pipeline stages (must equal the number of ranks)")
        ->check(kPositive)
        ->default_str("world size");
    app.add_option("--schedule", o.schedule, "a plain run of one schedule: gpipe, 1f1b, interleaved, zb-h1")
        ->default_str("every step");
    app.add_option("--microbatches", o.microbatches, "microbatches m per step (steps 2-6; divides --batch)")
        ->check(kPositive)
        ->capture_default_str();
    v_opt = app.add_option("--virtual-stages", o.virtual_stages,
                           "chunks per rank v for the interleaved schedule (--layers divisible by v * pp)")
                ->check(kPositive)
                ->capture_default_str();
    app.add_option("--requests", o.requests, "most requests in flight in step 7 (runs 1, 2, 4, ... up to it)")
        ->check(kPositive)
        ->capture_default_str();
    app.add_option("--prompt", o.prompt, "prompt tokens in step 7")->check(kPositive)->capture_default_str();
    app.add_option("--gen-tokens", o.gen_tokens, "tokens generated per request in step 7")
        ->check(kPositive)
        ->capture_default_str();
  };
  spec.validate = [&](const CommonOptions& opts, int world) {
    o.cfg.validate();
    FIVEFOLD_USAGE_CHECK(o.cfg.steps >= 1, "--steps ", o.cfg.steps, ": training needs at least one step; pass "
                         "--steps 1 or more");
    if (o.pp == 0) o.pp = world;
    FIVEFOLD_USAGE_CHECK(o.pp == world, "--pp ", o.pp, " must equal the number of ranks ", world,
                         "; run mpirun -np ", o.pp, " or pass --pp ", world);
    o.v_given = v_opt && v_opt->count() > 0;
    using ch04::ScheduleKind;
    const ScheduleKind k = o.schedule.empty() ? ScheduleKind::gpipe : ch04::parse_schedule(o.schedule);
    const bool interleaved_step = opts.step == 0 || opts.step == 4 || opts.step == 6;
    const bool inter = k == ScheduleKind::interleaved || (o.schedule.empty() && o.v_given && interleaved_step);
    // An explicit --virtual-stages with another --schedule is refused (check_layout names it).
    const int v = inter || (o.v_given && !o.schedule.empty()) ? o.virtual_stages : 1;
    const std::string bad = ch04::check_layout(inter ? ScheduleKind::interleaved : k, o.cfg.layers, o.pp,
                                               o.microbatches, v, o.cfg.batch);
    FIVEFOLD_USAGE_CHECK(bad.empty(), bad);
    FIVEFOLD_USAGE_CHECK(o.prompt <= o.cfg.seq, "--prompt ", o.prompt, " is longer than --seq ", o.cfg.seq,
                         "; pass --prompt <= --seq");
    const int dump_step = 2 + static_cast<int>(o.schedule.empty() ? ScheduleKind::one_f_one_b : k);
    FIVEFOLD_USAGE_CHECK(opts.dump.empty() || opts.step == 0 || opts.step == dump_step, "--dump ", opts.dump,
                         " is written by step ", dump_step, " (the ", o.schedule.empty() ? "1f1b" : o.schedule,
                         " training); run all steps or --step ", dump_step, " with --dump");
  };
  spec.config = [&] { return ch04::config_json(o); };
  spec.has_dump = true;
  spec.memory = [&](int) {  // the serial reference and the parallel model side by side, at most
    return MemoryNeed{2 * ch01::training_bytes(o.cfg), "--batch, --seq, --dim, --ffn, --vocab or --layers"};
  };
  return run_chapter(argc, argv, spec);
}
