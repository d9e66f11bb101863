// SPDX-License-Identifier: MIT
// Step 2: buckets and overlap. The backward produces gradients from the last unit to the
// first; a bucket is whole units, closed once it holds at least --bucket-mb MiB; once its units are done, its all-reduce is POSTED with a
// non-blocking iall_reduce and the backward of the next units goes on meanwhile. After the
// backward only the part of the communication the backward did not hide is left to wait for.
// We run it twice, overlapped and not (the same buckets reduced after the backward), and report
//   hidden share = 1 - (exposed communication, overlapped) / (communication, not overlapped).
// MPI progress: MPI_THREAD_FUNNELED and no progress thread, so an MPI_Iallreduce advances only
// inside MPI calls; the trainer calls Request::test() between units to drive it. On the CUDA
// backend NCCL runs the all-reduce on its own stream and needs no such help.
// With --trace, lane (tid) 1 shows each bucket's all-reduce from post to observed completion,
// lane 0 the per-unit compute.
// Run: mpirun -np 4 build/cpu/bin/ch02_data_parallel --step 2 --trace ch02.trace.json
//      mpirun -np 2 build/cpu/bin/ch02_data_parallel --step 2 --layers 8 --dim 256 --ffn 512 --bucket-mb 0.5
#include <algorithm>

#include "chapters/02_data_parallel/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch02 {

void step2_buckets(Context& ctx, Lab& lab) {
  if (skipped(ctx, lab, 2)) return;
  Options& o = lab.o;
  if (o.bucket_mb <= 0) {
    ctx.narrator.say("--bucket-mb 0: no buckets, so nothing to overlap; step 1 is this run. Pass --bucket-mb > 0.");
    return;
  }
  const bool first_overlap = !o.no_overlap;
  RunResult runs[2];
  for (int i = 0; i < 2; ++i) {
    DpConfig dc = dp_config(o, 0);
    dc.overlap = i == 0 ? first_overlap : !first_overlap;
    runs[dc.overlap ? 0 : 1] = train_dp(ctx, lab, dc, dc.overlap ? "buckets" : "buckets-blocking");
  }
  const RunResult& on = runs[0];
  const RunResult& off = runs[1];
  // Buckets of the run (the same for both), in the order they are reduced.
  {
    DpConfig dc = dp_config(o, 0);
    const std::unique_ptr<DpTrainer> probe = DpTrainer::make(ctx.ops, ctx.world, o.cfg, dc);  // collective-free: only to list the buckets
    Table t{"Buckets (--bucket-mb " + fmt("%g", o.bucket_mb) + "), in backward order", {"bucket", "units", "elements", "bytes"}, {}};
    for (std::size_t b = 0; b < probe->buckets().size(); ++b) {
      const Bucket& k = probe->buckets()[b];
      const std::string units = probe->layout().unit(k.last_unit).name +
                                (k.first_unit == k.last_unit ? "" : " .. " + probe->layout().unit(k.first_unit).name);
      t.add({std::to_string(b), units, std::to_string(k.numel), human_bytes(4.0 * k.numel)});
    }
    ctx.show(t);
  }
  ctx.narrator.say("The overlapped run's first step, in order (post AR = iall_reduce posted; the backward goes on):\n" +
                   wrap_schedule(on.schedule));
  const double steps = std::max(1, on.times.steps);
  // Per step, slowest rank (a collective finishes when its slowest member does).
  const double bwd_on = ctx.max_over_ranks(on.times.backward / steps);
  const double exposed_on = ctx.max_over_ranks(on.times.exposed_comm / steps);
  const double life_on = ctx.max_over_ranks(on.times.comm_lifetime / steps);
  const double bwd_off = ctx.max_over_ranks(off.times.backward / std::max(1, off.times.steps));
  const double comm_off = ctx.max_over_ranks(off.times.exposed_comm / std::max(1, off.times.steps));
  const double hidden = comm_off > 0 ? std::clamp(1.0 - exposed_on / comm_off, 0.0, 1.0) : 0.0;
  Table t{"Time per step (ms, max over ranks; steps after the first)",
          {"run", "backward", "comm after backward", "backward + comm", "bucket lifetimes (sum)"}, {}};
  t.add({"buckets, overlapped", fmt("%.3f", bwd_on * 1e3), fmt("%.3f", exposed_on * 1e3),
         fmt("%.3f", (bwd_on + exposed_on) * 1e3), fmt("%.3f", life_on * 1e3)});
  t.add({"buckets, after backward", fmt("%.3f", bwd_off * 1e3), fmt("%.3f", comm_off * 1e3),
         fmt("%.3f", (bwd_off + comm_off) * 1e3), "-"});
  ctx.narrator.table(t);
  ctx.narrator.say("Communication hidden behind the backward: " + fmt("%.0f", 100 * hidden) + "% (1 - " +
                   fmt("%.3f", exposed_on * 1e3) + " ms exposed / " + fmt("%.3f", comm_off * 1e3) +
                   " ms when not overlapped), with " + std::to_string(on.buckets) + " bucket(s).");
  ctx.narrator.say("How much hides depends on the machine: with more ranks than cores (oversubscribed), ranks wait for\n"
                   "each other's time slices and little overlaps; the CPU's 'overlap' also needs the test() calls to\n"
                   "make MPI progress, and a small model leaves little backward to hide behind. Open MPI runs its\n"
                   "non-blocking collectives with another implementation (libnbc) than the blocking ones, which\n"
                   "can be slower, so the overlapped run can even lose (hidden share 0%). Timings vary run to run;\n"
                   "the counted calls and bytes below do not. Lifetimes are post -> completion OBSERVED at a\n"
                   "test() or the final wait, an upper bound on the real transfer time.");
  if (ctx.options.trace.empty())
    ctx.narrator.say("Run with --trace FILE and open it in https://ui.perfetto.dev: tid 1 shows the bucket all-reduces\n"
                     "in flight while tid 0 computes the backward of the next units.");
}

}  // namespace fivefold::ch02
