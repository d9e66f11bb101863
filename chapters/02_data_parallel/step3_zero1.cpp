// SPDX-License-Identifier: MIT
// Step 3: ZeRO-1. AdamW's m and v (8 of our 16 bytes per parameter) are needed only by the
// update, and the update is elementwise; so rank r keeps m and v for its 1/n slice only, and
// only updates that slice. The all-reduce is split into its two halves around the update:
//   reduce-scatter the gradient (rank r receives the summed slice r)  ->  AdamW on slice r
//   ->  all-gather the updated slices (every rank has the full parameters again).
// Same bytes on the wire as DDP's all-reduce (2(n-1)/n·Ψ), 1/n of the optimizer memory.
// All parameters sit in one flat buffer padded to a multiple of n, so each slice is contiguous.
// Run: mpirun -np 4 build/cpu/bin/ch02_data_parallel --step 3
//      mpirun -np 4 build/cpu/bin/ch02_data_parallel --zero 1 --quiet --json zero1.json
#include "chapters/02_data_parallel/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch02 {

namespace {

std::string range(std::int64_t a, std::int64_t len) {
  return "[" + std::to_string(a) + ", " + std::to_string(a + len) + ")";
}

}  // namespace

void step3_zero1(Context& ctx, Lab& lab) {
  if (skipped(ctx, lab, 3)) return;
  const int n = ctx.size(), r = ctx.rank();
  const FlatLayout layout(model_units(lab.o.cfg), n, false);
  const std::int64_t s = layout.shard();
  ctx.narrator.say("One flat buffer of Ψ = " + std::to_string(layout.numel()) + " parameters, padded to " +
                   std::to_string(layout.padded()) + " = " + std::to_string(n) + " x " + std::to_string(s) +
                   " (" + std::to_string(layout.padded() - layout.numel()) + " zeros of padding so that every rank "
                   "owns an equal, contiguous slice):");
  ctx.say_ranks("parameters: full [" + std::to_string(layout.padded()) + "]; gradient: full, then slice " +
                range(r * s, s) + " after the reduce-scatter; AdamW m, v: slice " + range(r * s, s) + " only");
  ctx.narrator.say("Per step: backward -> reduce_scatter(grad [" + std::to_string(layout.padded()) + "] -> slice [" +
                   std::to_string(s) + "]) -> AdamW on the slice -> all_gather(slice -> params [" +
                   std::to_string(layout.padded()) + "]).");
  const RunResult res = train_dp(ctx, lab, dp_config(lab.o, 1), "zero1");
  ctx.narrator.say("What one step did, in order (RS = reduce-scatter, AG = all-gather):\n" + wrap_schedule(res.schedule));
  ctx.narrator.say("AdamW is elementwise, so updating a slice with its own m and v is exactly that slice of the full\n"
                   "update; the padding has zero gradient and stays zero. What differs from DDP is only the order\n"
                   "of the gradient sum inside the reduce-scatter (rounding, within the tolerances).");
}

}  // namespace fivefold::ch02
