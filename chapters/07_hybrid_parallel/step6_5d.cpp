// SPDX-License-Identifier: MIT
// Step 6: + EP (5D). MoE layers with E/ep whole experts per rank on the ep axis (chapter 06),
// together with tp (Megatron-SP: Megatron-LM requires sequence parallelism when tp > 1 with MoE),
// sp, dp and pp. Dense gradients are summed over sp, ep and dp; an expert's over sp and dp, its
// expert-data-parallel group (and over tp under Megatron-SP: the tp ranks hold the same experts
// but route different positions). Capacity under a split sequence: a prefix sum of per-expert
// counts over the sequence group, in global position order. Checked against the serial model,
// every group's traffic against its formula (fixed-buffer all-to-alls with capacity).
// Run: mpirun -np 8 build/cpu/bin/ch07_hybrid_parallel --step 6                   (ep 2 x sp 2 x pp 2)
//      mpirun -np 8 build/cpu/bin/ch07_hybrid_parallel --step 6 --tp 2 --ep 2 --pp 2 --sp-mode megatron
#include "chapters/07_hybrid_parallel/hybrid_run.hpp"
#include "chapters/07_hybrid_parallel/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch07 {

void step6_5d(Context& ctx, const Options& o) {
  const std::string why = step_blocker(o, 6, ctx.size());
  if (!why.empty()) {
    ctx.narrator.say("Step 6 trains a MoE model on the grid, and this run's layout cannot: " + why +
                     ".\nSkipped (e.g. mpirun -np 8 ch07_hybrid_parallel --step 6).");
    return;
  }
  const ProcessGrid grid = step_grid(o, 6, ctx.size());
  const HybridConfig hc = step_config(o, 6, ctx.size());
  const ModelConfig& c = hc.model;
  const int tp = grid.size(Axis::tp);
  const bool megatron = hc.megatron_sp && tp > 1;
  const AxisSet expert_group = megatron ? AxisSet{Axis::tp, Axis::sp, Axis::dp} : AxisSet{Axis::sp, Axis::dp};
  ctx.narrator.say("6a. " + grid.describe() + ", " + std::to_string(c.experts) + " experts, top-" + std::to_string(c.topk) +
                   ", capacity factor " + fmt("%.2f", c.capacity_factor) + ".\n"
                   "    ep groups (dispatch/combine all-to-alls) " + show_groups(grid.groups(AxisSet{Axis::ep})) + "\n"
                   "    dense gradients summed over sp, ep, dp: " + show_groups(grid.groups(AxisSet{Axis::sp, Axis::ep, Axis::dp})) + "\n"
                   "    expert gradients over " + expert_group.name() + " (the ranks holding the same experts): " +
                   show_groups(grid.groups(expert_group)) + "\n"
                   "    EP x TP: our experts are whole on every tp rank (Megatron's expert-tensor-parallel size 1); with\n"
                   "    tp > 1 the tokens must differ across tp, so MoE needs Megatron-SP (each tp rank routes T/tp positions).\n"
                   "    A sequence split over " + (megatron ? std::string("tp") : std::string("sp")) +
                   " routes with capacity per WHOLE sequence: each rank all-gathers every segment's per-expert\n"
                   "    counts and keeps an assignment only if fewer than the capacity were kept at earlier positions.");
  const HybridRun run = train_hybrid(ctx, "5d", grid, hc);  // == serial, every group's bytes == formula
  ctx.say_ranks("its tokens made " + std::to_string(run.assignments) + " assignments over the run, " +
                std::to_string(run.assignments - run.kept) + " dropped over capacity");
}

}  // namespace fivefold::ch07
