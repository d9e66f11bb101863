// SPDX-License-Identifier: MIT
// Step 1: naive DDP. Every rank holds a full replica (same seed, same initial weights), takes
// its b_r = B/n sequences of the SAME global batch, runs forward and backward, and then
// all-reduces every parameter's gradient, one blocking call per tensor, after the backward.
// Each rank scales its gradients by b_r/B first, so the sum over ranks is exactly the gradient
// of the mean loss over the global batch; every rank then takes the same AdamW step and the
// replicas stay identical. Checked: losses, step-0 gradients and the parameters after
// --steps steps equal serial training on the whole global batch.
// Run: mpirun -np 4 build/cpu/bin/ch02_data_parallel --step 1
//      mpirun -np 3 build/cpu/bin/ch02_data_parallel --zero 0 --bucket-mb 0 --batch 8   (uneven: 3+3+2)
#include <cmath>

#include "chapters/02_data_parallel/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch02 {

void step1_naive_ddp(Context& ctx, Lab& lab) {
  if (skipped(ctx, lab, 1)) return;
  const Options& o = lab.o;
  const int n = ctx.size();
  const BatchSplit split{o.cfg.batch, n};
  ctx.narrator.say("Global batch B = " + std::to_string(o.cfg.batch) + " sequences of T = " +
                   std::to_string(o.cfg.seq) + " tokens, split over n = " + std::to_string(n) +
                   " ranks (rows offset(r) .. offset(r)+b_r-1 of the same global batch):");
  ctx.say_ranks("sequences " + std::to_string(split.offset(ctx.rank())) + ".." +
                std::to_string(split.offset(ctx.rank()) + split.count(ctx.rank()) - 1) + " (b_r = " +
                std::to_string(split.count(ctx.rank())) + "), gradient weight b_r/B = " +
                fmt("%.4f", split.weight(ctx.rank())) + "; holds every parameter");
  if (!split.even())
    ctx.narrator.say("B does not divide by n: ranks hold different numbers of sequences. The global loss is the mean\n"
                     "over all B*T tokens = sum_r (b_r/B) * mean_r, so each rank scales its gradient by b_r/B (not\n"
                     "1/n) before the sum; with an even split b_r/B = 1/n, the usual DDP average.");
  DpConfig dc = dp_config(o, 0);
  dc.bucket_mb = 0;  // naive: one all-reduce per parameter tensor
  const RunResult res = train_dp(ctx, lab, dc, "naive");
  const OpCount ar = res.counts.count("all_reduce") ? res.counts.at("all_reduce") : OpCount{};
  ctx.narrator.say("Each step: forward + backward on the local rows, then " +
                   std::to_string(ar.calls / o.cfg.steps) + " blocking all-reduces (one per parameter tensor, " +
                   human_bytes(static_cast<double>(ar.payload_bytes) / o.cfg.steps) +
                   " in all), then the same AdamW step on every rank. The first step, in order:\n" +
                   wrap_schedule(res.schedule));
  Table t{"Loss per step: DDP over " + std::to_string(n) + " rank(s) vs serial on the global batch",
          {"step", "DDP loss", "serial loss", "|diff|"}, {}};
  const SerialRun& ref = serial_run(ctx, lab);
  for (std::size_t k = 0; k < res.losses.size(); ++k)
    t.add({std::to_string(k), fmt("%.6f", res.losses[k]), fmt("%.6f", ref.losses[k]),
           fmt("%.2g", std::abs(res.losses[k] - ref.losses[k]))});
  ctx.show(t);
  ctx.narrator.say("The results are not bitwise equal to serial: a rank sums its own rows' contributions to a\n"
                   "weight gradient, the all-reduce then adds the ranks' partial sums, while the serial matmul adds\n"
                   "all B*T rows in one order. Float addition is not associative, so the two differ by rounding\n"
                   "(~1e-7 relative), and AdamW carries that into the weights; hence the 1e-5 / 1e-4 tolerances.");
}

}  // namespace fivefold::ch02
