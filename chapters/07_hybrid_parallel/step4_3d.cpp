// SPDX-License-Identifier: MIT
// Step 4: DP x TP x PP (3D). Chapter 04's 1F1B over the pp group, chapter 03's TP inside each
// stage, chapter 02's bucketed gradient all-reduce (or ZeRO-1 with --zero 1) over the dp group:
// one decoder per rank over its stage's layers and shards, the same step as every layout.
// Checked against the serial model; each group's traffic counted against its formula.
// Run: mpirun -np 16 build/cpu/bin/ch07_hybrid_parallel --step 4 --tp 2 --pp 4 --layers 4   (the course's example)
//      mpirun -np 8 build/cpu/bin/ch07_hybrid_parallel --step 4 --tp 2 --pp 2 --zero 1
#include "chapters/04_pipeline_parallel/pp_schedule.hpp"
#include "chapters/07_hybrid_parallel/hybrid_run.hpp"
#include "chapters/07_hybrid_parallel/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch07 {

void step4_3d(Context& ctx, const Options& o) {
  const std::string why = step_blocker(o, 4, ctx.size());
  if (!why.empty()) {
    ctx.narrator.say("Step 4 trains dp x tp x pp, and this run's layout cannot: " + why +
                     ".\nSkipped (e.g. mpirun -np 8 ch07_hybrid_parallel --step 4 --tp 2 --pp 2).");
    return;
  }
  const ProcessGrid grid = step_grid(o, 4, ctx.size());
  const HybridConfig hc = step_config(o, 4, ctx.size());
  const ModelConfig& c = hc.model;
  const int pp = grid.size(Axis::pp), dp = grid.size(Axis::dp), m = hc.microbatches;
  ctx.narrator.say("4a. " + grid.describe() + ". A rank (t, d, p) holds stage p's layers (chapter 04), shard t of\n"
                   "    each of their weights (chapter 03) and trains on the rows of data rank d (chapter 02).\n"
                   "    tp groups " + show_groups(grid.groups(AxisSet{Axis::tp})) + "\n    pp groups " +
                   show_groups(grid.groups(AxisSet{Axis::pp})) + "\n    dp groups " +
                   show_groups(grid.groups(AxisSet{Axis::dp})) + "\n" + "    Every step: " + std::to_string(m) +
                   " microbatches through 1F1B; the TP all-reduces run inside each pass; the dp " +
                   (hc.dp.zero1 ? "reduce-scatter\n    (ZeRO-1) after the last backward, AdamW on 1/dp of the shard, then an all-gather."
                                : "buckets are\n    posted while the last microbatch's backward runs."));
  const HybridRun run = train_hybrid(ctx, "3d", grid, hc);

  // Each group's traffic against its formula (per rank, per step x steps).
  const auto coords = grid.coords(ctx.rank());
  const auto chunk = ch04::rank_chunks(c.layers, pp, 1, coords[static_cast<int>(Axis::pp)])[0];
  const std::int64_t e = chunk.first == 0, h = chunk.second == c.layers;
  const std::int64_t bm = c.batch / dp / m, act = bm * c.seq * c.dim * 4, S = c.steps;
  const OpCount tpf = tp_all_reduce_formula(c, grid, ctx.rank(), m, c.seq);
  const std::int64_t tp_bytes = tpf.payload_bytes;
  ctx.comm(Context::entry("tp", "all_reduce", run.groups.at("tp"), S * tpf.calls, S * tp_bytes));
  // TUTORIAL: pp: m activations [b_m, T, C] to the next stage, m gradients to the previous one.
  const std::int64_t pp_msgs = pp > 1 ? m * ((h ? 0 : 1) + (e ? 0 : 1)) : 0;
  ctx.comm(Context::entry("pp", "isend", run.groups.at("pp"), S * pp_msgs, S * pp_msgs * act));
  // TUTORIAL: dp: the stage's shard gradients, once per step: all-reduced in buckets, or
  // reduce-scattered (padded to a multiple of dp) and the parameters all-gathered (1/dp each).
  if (hc.dp.zero1) {
    ctx.comm(Context::entry("dp", "reduce_scatter", run.groups.at("dp"), dp > 1 ? S : 0, dp > 1 ? S * run.dp_padded * 4 : 0));
    ctx.comm(Context::entry("dp", "all_gather", run.groups.at("dp"), dp > 1 ? S : 0, dp > 1 ? S * run.dp_padded / dp * 4 : 0));
  } else {
    const std::string op = hc.dp.overlap ? "iall_reduce" : "all_reduce";
    ctx.comm(Context::entry("dp", op, run.groups.at("dp"), dp > 1 ? S * run.dp_buckets : 0, dp > 1 ? S * run.stage_numel * 4 : 0));
  }
  ctx.say_ranks("tp all-reduce " + human_bytes(static_cast<double>(tp_bytes)) + "/step (formula), pp isend " +
                human_bytes(static_cast<double>(pp_msgs * act)) + "/step, dp gradients of " +
                human_bytes(static_cast<double>(run.stage_numel * 4)) + " (its stage's shard)");
  ctx.narrator.say("4b. The dp traffic of a rank is its stage's shard, 1/(tp*pp) of the model, never the whole model;\n"
                   "    the tp traffic is activations, 2(tp-1)/tp of them per all-reduce on the wire; pp sends one\n"
                   "    [b_m, T, C] per microbatch and direction, the smallest of the three.");
}

}  // namespace fivefold::ch07
