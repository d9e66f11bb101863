// SPDX-License-Identifier: MIT
// Step 4: the cost model. Per rank, a ring all-reduce sends 2(n-1)/n * S bytes in 2(n-1)
// messages; all-gather, reduce-scatter and all-to-all send (n-1)/n * S in n-1 messages. The
// α-β model prices a message of m bytes at α + m/β, so the ring costs 2(n-1)α + 2(n-1)/n·S/β.
// We count what the hand-written code really sent (Communicator counters, in a communicator
// split off for each collective so nothing else is counted) and compare it with the EXACT
// per-rank formula; then we time hand vs library and report algbw = S/t and busbw = algbw *
// 2(n-1)/n (all-reduce) or (n-1)/n (the others), as nccl-tests defines them.
// Run: mpirun -np 4 build/cpu/bin/ch00_collectives --step 4 --iters 20
#include <chrono>
#include <functional>

#include "chapters/00_collectives/cost_model.hpp"
#include "chapters/00_collectives/ring.hpp"
#include "chapters/00_collectives/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch00 {

namespace {

const char* kOps[] = {"all_reduce", "all_gather", "reduce_scatter", "all_to_all"};

/// Runs the hand-written collective @p op once on @p comm over a buffer of @p count elements.
void run_hand(const std::string& op, Communicator& comm, Ops& ops, Tensor& buf, Tensor& out, Tensor& scratch) {
  if (op == "all_reduce") ring_all_reduce(comm, ops, buf, ReduceOp::sum, &scratch);
  if (op == "all_gather") ring_all_gather(comm, buf);
  if (op == "reduce_scatter") ring_reduce_scatter(comm, ops, buf, ReduceOp::sum, &scratch);
  if (op == "all_to_all") {
    const int n = comm.size();
    std::vector<std::int64_t> sc(n), rc(n, chunk_of(buf.numel(), n, comm.rank()).size);
    for (int j = 0; j < n; ++j) sc[j] = chunk_of(buf.numel(), n, j).size;
    pairwise_all_to_allv(comm, buf, sc, out, rc);
  }
}

/// Runs the library collective @p op once (count divisible by n): S = the full buffer.
void run_library(const std::string& op, Communicator& comm, Tensor& buf, Tensor& out) {
  const std::int64_t block = buf.numel() / comm.size();
  if (op == "all_reduce") comm.all_reduce(buf);
  if (op == "all_gather") comm.all_gather(buf.flat(0, block), out);
  if (op == "reduce_scatter") {
    Tensor part = out.flat(0, block);
    comm.reduce_scatter(buf, part);
  }
  if (op == "all_to_all") comm.all_to_all(buf, out);
}

RingTraffic exact(const std::string& op, std::int64_t count, int n, int r) {
  if (op == "all_reduce") return ring_all_reduce_traffic(count, n, r);
  if (op == "all_gather") return ring_all_gather_traffic(count, n, r);
  if (op == "reduce_scatter") return ring_reduce_scatter_traffic(count, n, r);
  return pairwise_all_to_all_traffic(count, n, r);
}

/// Seconds per call of @p fn, averaged over @p iters calls after one warm-up, max over ranks.
double time_it(Context& ctx, int iters, const std::function<void()>& fn) {
  fn();
  {
    Uncounted quiet(ctx.world);
    ctx.world.barrier();
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) fn();
  ctx.ops.synchronize();
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
  return ctx.max_over_ranks(t);  // a collective ends when its slowest rank ends
}

}  // namespace

void step4_cost_model(Context& ctx, const Options& o) {
  const int n = ctx.size(), r = ctx.rank();
  const double S = 4.0 * o.count;
  ctx.narrator.say("alpha-beta model: a message of m bytes costs alpha + m/beta. Ring all-reduce: 2(n-1) messages of\n"
                   "S/n bytes -> 2(n-1)*alpha + 2(n-1)/n*S/beta; the others: (n-1)*alpha + (n-1)/n*S/beta.\n"
                   "Counted bytes of the hand-written code (S = " + human_bytes(S) + ", n = " + std::to_string(n) +
                   ") vs the exact per-rank formula:");
  Table t{"Bytes sent per rank by the hand-written collectives (rank 0; every rank is checked)",
          {"collective", "calls", "counted bytes", "exact formula", "textbook", "textbook factor"}, {}};
  std::string per_rank;
  for (const std::string op : kOps) {
    // TUTORIAL: a communicator of our own, so its counters hold exactly this collective's calls.
    std::unique_ptr<Communicator> comm = ctx.world.split(0, r, "hand_" + op);
    Tensor buf = ctx.ops.zeros({o.count}), out = ctx.ops.zeros({n * chunk_of(o.count, n, r).size});
    Tensor scratch = ring_scratch(ctx.ops, o.count, n);
    run_hand(op, *comm, ctx.ops, buf, out, scratch);
    const RingTraffic want = exact(op, o.count, n, r);
    const CommEntry e = Context::entry(comm->name(), "sendrecv", comm->counts(), want.calls, want.bytes);
    ctx.comm(e);
    const double book = textbook_bytes(op, S, n);
    t.add({op, std::to_string(e.calls), std::to_string(e.payload_bytes), std::to_string(want.bytes), fmt("%.1f", book),
           op == "all_reduce" ? "2(n-1)/n" : "(n-1)/n"});
    per_rank += (per_rank.empty() ? "" : ", ") + op + " " + std::to_string(e.payload_bytes) +
                (e.matches() ? " B" : " B (formula: " + std::to_string(want.bytes) + ")");
  }
  ctx.narrator.table(t);
  ctx.narrator.say("Every rank's counted bytes (each compared with its own exact formula):");
  ctx.say_ranks(per_rank);
  ctx.narrator.say("Exact: all-reduce 2S - chunk(r) - chunk(r+1); all-gather S - chunk(r+1); reduce-scatter and\n"
                   "all-to-all S - chunk(r) (bytes of the chunks a rank never sends). Equal to the textbook value\n"
                   "when n divides count; otherwise they differ by less than one element per phase.");
  {  // The library's counters record the payload handed to the call (S), not what moved.
    ctx.narrator.say("The library's own all_reduce, called once on the same S, is counted differently: a\n"
                     "communicator records the payload handed to the call (S = " + std::to_string(o.count * 4) +
                     " bytes), not what its algorithm moves; the closing table's\n'library all_reduce' row checks "
                     "that convention (docs/reference.md, \"The summary\").");
    std::unique_ptr<Communicator> lib = ctx.world.split(0, r, "library");
    Tensor buf = ctx.ops.zeros({o.count});
    lib->all_reduce(buf);
    ctx.comm(Context::entry(lib->name(), "all_reduce", lib->counts(), 1, o.count * 4));
  }

  // Timing: sizes count/64, count/8, count rounded down to a multiple of n (the library's
  // all_gather / reduce_scatter / all_to_all need equal blocks).
  Table tt{"Time per call (max over ranks), algbw = S/t, busbw = algbw*factor (GB/s = 1e9 B/s)",
           {"collective", "size", "hand us", "library us", "hand algbw", "hand busbw", "library algbw",
            "library busbw", "hand/library"},
           {}};
  std::int64_t last = -1;
  ctx.narrator.say("Timed at three sizes: --count/64, --count/8 and --count floats, each rounded down to a multiple of\n"
                   "n (the library's all-gather, reduce-scatter and all-to-all need equal blocks); each time is the\n"
                   "mean of --iters calls after one warm-up, the slowest rank's.");
  std::unique_ptr<Communicator> comm = ctx.world.split(0, r, "timing");
  for (std::int64_t div : {64, 8, 1}) {
    const std::int64_t count = o.count / div / n * n;
    if (count == 0 || count == last) continue;
    last = count;
    Tensor buf = ctx.ops.zeros({count}), out = ctx.ops.zeros({count}), scratch = ring_scratch(ctx.ops, count, n);
    for (const std::string op : kOps) {
      const double th = time_it(ctx, o.iters, [&] { run_hand(op, *comm, ctx.ops, buf, out, scratch); });
      const double tl = time_it(ctx, o.iters, [&] { run_library(op, *comm, buf, out); });
      const double bytes = 4.0 * count, f = busbw_factor(op, n);
      // TUTORIAL: algbw = S/t; busbw = algbw * factor (nccl-tests), comparable with a link's speed.
      tt.add({op, human_bytes(bytes), fmt("%.1f", th * 1e6), fmt("%.1f", tl * 1e6), fmt("%.2f", bytes / th / 1e9),
              fmt("%.2f", bytes / th * f / 1e9), fmt("%.2f", bytes / tl / 1e9), fmt("%.2f", bytes / tl * f / 1e9),
              fmt("%.2f", tl / th)});
    }
  }
  if (tt.rows.empty()) {
    ctx.narrator.say("(count < n: nothing to time)");
  } else {
    ctx.narrator.table(tt);
    ctx.narrator.say("busbw is comparable across collectives and world sizes: it is the bandwidth each link would\n"
                     "need to move the textbook bytes in time t. hand/library = t_library / t_hand (> 1: hand faster).\n"
                     "Timings vary run to run (other processes, oversubscribed cores); counted bytes do not.");
  }
}

}  // namespace fivefold::ch00
