// SPDX-License-Identifier: MIT
// Step 4: DP x TP x PP (3D). Chapter 04's 1F1B over the pp group, chapter 03's TP inside each
// stage, chapter 02's bucketed gradient all-reduce (or ZeRO-1 with --zero 1) over the dp group:
// one decoder per rank over its stage's layers and shards, the same step as every layout.
// Checked against the serial model; each group's traffic counted against its formula.
// Run: mpirun -np 16 build/cpu/bin/ch07_hybrid_parallel --step 4 --tp 2 --pp 4 --layers 4   (the course's example)
//      mpirun -np 8 build/cpu/bin/ch07_hybrid_parallel --step 4 --tp 2 --pp 2 --zero 1
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
  const int m = hc.microbatches;
  ctx.narrator.say("4a. " + grid.describe() + ". A rank (t, d, p) holds stage p's layers (chapter 04), shard t of\n"
                   "    each of their weights (chapter 03) and trains on the rows of data rank d (chapter 02).\n"
                   "    tp groups " + show_groups(grid.groups(AxisSet{Axis::tp})) + "\n    pp groups " +
                   show_groups(grid.groups(AxisSet{Axis::pp})) + "\n    dp groups " +
                   show_groups(grid.groups(AxisSet{Axis::dp})) + "\n" + "    Every step: " + std::to_string(m) +
                   " microbatches through 1F1B; the TP all-reduces run inside each pass; the dp " +
                   (hc.dp.zero1 ? "reduce-scatter\n    (ZeRO-1) after the last backward, AdamW on 1/dp of the shard, then an all-gather."
                                : "buckets are\n    posted while the last microbatch's backward runs."));
  const HybridRun run = train_hybrid(ctx, "3d", grid, hc);

  // What the rank moved per step (each against its formula in train_hybrid's closing table).
  auto per_step = [&](const std::string& g, const std::string& op) {
    return human_bytes(static_cast<double>(counted(run, g, op).payload_bytes) / run.steps);
  };
  ctx.say_ranks("tp all-reduce " + per_step("tp", "all_reduce") + "/step, pp isend " + per_step("pp", "isend") +
                "/step, dp gradients of " + human_bytes(static_cast<double>(run.stage_numel * 4)) +
                " (its stage's shard)");
  ctx.narrator.say("4b. The dp traffic of a rank is its stage's shard, 1/(tp*pp) of the model, never the whole model;\n"
                   "    the tp traffic is activations, 2(tp-1)/tp of them per all-reduce on the wire; pp sends one\n"
                   "    [b_m, T, C] per microbatch and direction, the smallest of the three.");
}

}  // namespace fivefold::ch07
