// SPDX-License-Identifier: MIT
// Step 5: ZeRO-3 / FSDP. Now the parameters are sharded too: rank r stores only its slice of
// every unit, drawn straight from the seed (a shard equals the slice of the full initialisation).
// A unit's full parameters exist only while it runs:
//   forward:  all-gather unit u into a workspace -> forward of u -> release
//   backward: all-gather unit u again -> backward of u -> reduce-scatter its gradient -> release
// With prefetch, the gather of unit u+1 (u-1 in the backward) is STARTED right after unit u's,
// with a non-blocking iall_gather into a second workspace, and waited for only when u+1 runs:
// it travels while u computes. The reduce-scatters are non-blocking too (as in step 4). On the
// CPU the calls progress at the Request::test() between units (MPI progress, see step 2); on
// the CUDA backend the Communicator's default runs them blocking for now (README).
// Bytes on the wire: 3(n-1)/n·Ψ per step (two gathers, one reduce-scatter), 1.5x DDP's.
// Run: mpirun -np 4 build/cpu/bin/ch02_data_parallel --step 5 --trace zero3.trace.json
//      mpirun -np 4 build/cpu/bin/ch02_data_parallel --zero 3 --layers 8 --quiet
#include "chapters/02_data_parallel/dp_costs.hpp"
#include "chapters/02_data_parallel/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch02 {

void step5_zero3(Context& ctx, Lab& lab) {
  if (skipped(ctx, lab, 5)) return;
  const int n = ctx.size();
  const DpConfig dc = dp_config(lab.o, 3);
  const FlatLayout layout(model_units(lab.o.cfg), n, true);
  const int U = layout.num_units();
  ctx.narrator.say("Units: " + std::to_string(U) + " (embed, " + std::to_string(U - 2) + " decoder layers, head); " +
                   (dc.prefetch ? "prefetch on: two gather workspaces" : "prefetch off: one gather workspace") + ".");
  const RunResult res = train_dp(ctx, lab, dc, "zero3");
  ctx.narrator.say("What one step did, in order (AG = all-gather of a unit's parameters, RS = reduce-scatter of its\n"
                   "gradient; 'prefetch AG' = started without waiting, waited for when the unit runs):\n" +
                   wrap_schedule(res.schedule));
  const MemoryBytes full = exact_memory(dp_config(lab.o, 0), FlatLayout(model_units(lab.o.cfg), 1, false));
  ctx.say_ranks("stores parameters " + human_bytes(static_cast<double>(res.memory.params)) + " (" +
                fmt("%.3f", static_cast<double>(res.memory.params) / full.params) + " of the full " +
                human_bytes(static_cast<double>(full.params)) + "; 1/n = " + fmt("%.3f", 1.0 / n) +
                "), workspaces " + human_bytes(static_cast<double>(res.memory.buffers)));
  const int gathers = dc.prefetch ? 2 : 1, grads = dc.overlap ? 2 : 1;
  const double W = 4.0 * static_cast<double>(layout.max_padded());
  ctx.narrator.say("The workspaces are " + std::to_string(gathers) + " gather workspace(s) (the unit running" +
                   std::string(dc.prefetch ? ", and the next one arriving" : "") + ") and " + std::to_string(grads) +
                   " gradient workspace(s), each the size of the largest unit (" + human_bytes(W) + "): " +
                   std::to_string(gathers + grads) + " x " + human_bytes(W) + " = " + human_bytes((gathers + grads) * W) +
                   ",\nwhatever the depth, so with more layers the parameter memory per rank tends to Ψ/n: try --layers 16.");
}

}  // namespace fivefold::ch02
