// SPDX-License-Identifier: MIT
// Step 5: + SP (4D). The sequence split too: ring or zigzag attention on the sp axis (chapter 05;
// inside TP's f and g when tp > 1, each rank's ring carrying its own Hkv/tp kv heads), or
// Megatron-SP inside the tp group (--sp-mode megatron), together with pp and dp. Checked against
// the serial model; every group's traffic against its formula (train_hybrid).
// Run: mpirun -np 8 build/cpu/bin/ch07_hybrid_parallel --step 5                 (sp 2 x tp 2 x pp 2)
//      mpirun -np 8 build/cpu/bin/ch07_hybrid_parallel --step 5 --tp 2 --pp 2 --dp 2 --sp-mode megatron
#include "chapters/07_hybrid_parallel/hybrid_run.hpp"
#include "chapters/07_hybrid_parallel/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch07 {

void step5_4d(Context& ctx, const Options& o) {
  const std::string why = step_blocker(o, 5, ctx.size());
  if (!why.empty()) {
    ctx.narrator.say("Step 5 trains a layout with the sequence split, and this run's cannot: " + why +
                     ".\nSkipped (e.g. mpirun -np 8 ch07_hybrid_parallel --step 5).");
    return;
  }
  const ProcessGrid grid = step_grid(o, 5, ctx.size());
  const HybridConfig hc = step_config(o, 5, ctx.size());
  const int tp = grid.size(Axis::tp);
  const bool megatron = hc.megatron_sp && tp > 1;
  ctx.narrator.say("5a. " + grid.describe() + (megatron ? ", Megatron-SP inside tp" : ", " + ch05::sp_mode_name(hc.sp_mode) + " attention on sp") +
                   ".\n    " + (megatron ? "The norms and residuals hold T/tp positions; each TP region all-gathers along T and reduce-scatters\n"
                                           "    its output (chapter 05, step 1); the norm gains are summed over tp."
                                         : "Each rank keeps its positions' queries; k/v blocks of its Hkv/tp kv heads go around its sp group;\n"
                                           "    TP's f and g wrap the ring. Every gradient is summed over sp (each rank saw other positions).") +
                   "\n    sp groups " + show_groups(grid.groups(AxisSet{Axis::sp})) + ", tp groups " +
                   show_groups(grid.groups(AxisSet{Axis::tp})) + ", pp groups " + show_groups(grid.groups(AxisSet{Axis::pp})));
  train_hybrid(ctx, "4d", grid, hc);  // == serial, every group's bytes == formula
}

}  // namespace fivefold::ch07
