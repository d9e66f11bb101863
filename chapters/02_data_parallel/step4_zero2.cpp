// SPDX-License-Identifier: MIT
// Step 4: ZeRO-2. After the reduce-scatter a rank needs only its slice of the gradient, so the
// full gradient need not live either: each unit (embedding, a decoder layer, the head) is
// reduce-scattered right after ITS backward, into the rank's gradient shard, with a
// non-blocking ireduce_scatter that runs while the next unit's backward writes the other of two
// gradient workspaces (--no-overlap: blocking, one workspace). Persistent gradient memory drops
// from Ψ to Ψ/n (plus the unit workspaces). Each unit is its own flat segment padded to a multiple of n,
// so every reduce-scatter and all-gather has equal blocks. Bytes on the wire: as ZeRO-1.
// Run: mpirun -np 4 build/cpu/bin/ch02_data_parallel --step 4
#include "chapters/02_data_parallel/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch02 {

void step4_zero2(Context& ctx, Lab& lab) {
  if (skipped(ctx, lab, 4)) return;
  const int n = ctx.size();
  const FlatLayout layout(model_units(lab.o.cfg), n, true);
  Table t{"Units, each padded to a multiple of n = " + std::to_string(n) + " (every rank owns padded/n of each)",
          {"unit", "parameters", "padded", "per rank", "grad shard offset"}, {}};
  for (int u = 0; u < layout.num_units(); ++u) {
    const Segment& g = layout.segment_of(u);
    t.add({layout.unit(u).name, std::to_string(g.numel), std::to_string(g.padded), std::to_string(g.shard(n)),
           std::to_string(g.shard_offset)});
  }
  ctx.show(t);
  const bool overlap = !lab.o.no_overlap;
  ctx.narrator.say("Per step: backward of unit u -> " + std::string(overlap ? "ireduce_scatter" : "reduce_scatter") +
                   "(unit u's gradient -> its slice of the shard)" +
                   (overlap ? ", in flight\nwhile the next unit's backward writes the other workspace" : "") +
                   "; after the backward: AdamW on the shard, then one\nall-gather per unit rebuilds the parameter "
                   "replica. Every rank holds: parameters full [" +
                   std::to_string(layout.padded()) + "], gradient shard [" + std::to_string(layout.shard()) +
                   "], m and v [" + std::to_string(layout.shard()) + "] each, " + std::string(overlap ? "two" : "one") + " unit gradient workspace(s) [" +
                   std::to_string(layout.max_padded()) + "].");
  const RunResult res = train_dp(ctx, lab, dp_config(lab.o, 2), "zero2");
  ctx.narrator.say("What one step did, in order (RS = reduce-scatter of a unit's gradient, AG = all-gather):\n" +
                   wrap_schedule(res.schedule));
}

}  // namespace fivefold::ch02
