// SPDX-License-Identifier: MIT
// bench_collectives: the hand-written collectives of chapter 00 (ring all-reduce, ring
// all-gather, ring reduce-scatter, pairwise all-to-all) vs the backend's library collectives,
// from 4 KiB to 64 MiB (x4 steps), reported as algbw and busbw the way nccl-tests defines them:
//   algbw = S / t,  busbw = algbw * 2(n-1)/n (all_reduce) or * (n-1)/n (the others),
// S = the full buffer (all_reduce, reduce_scatter input, all_gather output, all_to_all buffer),
// t = the time of one call, taken as the max over ranks (the collective ends when the slowest
// rank ends); algbw/busbw use the mean t (as nccl-tests), busbw_median the median call. Every rank runs every benchmark with the same fixed iteration count (ranks must
// agree, so no adaptive iteration counts); only rank 0 reports.
//
// Run:  mpirun -np 2 build/cpu/bin/bench_collectives
//       mpirun -np 2 build/cpu/bin/bench_collectives --benchmark_filter='all_reduce/.*/(1048576|16777216)/'
//       mpirun -np 2 build/cuda/bin/bench_collectives --backend=cuda   (or FIVEFOLD_BACKEND=cuda)
// S is rounded down to a multiple of 4n bytes so every rank has an equal block.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "bench/bench_mpi.hpp"
#include "chapters/00_collectives/cost_model.hpp"
#include "chapters/00_collectives/ring.hpp"
#include "common/check.hpp"

namespace {

using namespace fivefold;

Backend* g_backend = nullptr;

/// Iterations for a buffer of @p bytes: about 512 MiB of buffers per benchmark, between 10 and
/// 1000 (enough calls for a stable median on a busy machine).
std::int64_t iterations_for(std::int64_t bytes) {
  const std::int64_t k = (std::int64_t{512} << 20) / bytes;
  return k < 10 ? 10 : (k > 1000 ? 1000 : k);
}

/// One call of @p op, hand-written (@p hand) or the library's, on buffers of count elements.
void run_once(const std::string& op, bool hand, Communicator& comm, Ops& ops, Tensor& buf, Tensor& out,
              Tensor& scratch) {
  const std::int64_t block = buf.numel() / comm.size();
  if (op == "all_reduce") {
    if (hand) ring_all_reduce(comm, ops, buf, ReduceOp::sum, &scratch);
    else comm.all_reduce(buf);
  } else if (op == "all_gather") {
    if (hand) ring_all_gather(comm, buf);
    else comm.all_gather(buf.flat(comm.rank() * block, block), out);
  } else if (op == "reduce_scatter") {
    Tensor part = out.flat(0, block);
    if (hand) ring_reduce_scatter(comm, ops, buf, ReduceOp::sum, &scratch);
    else comm.reduce_scatter(buf, part);
  } else {
    if (hand) pairwise_all_to_all(comm, buf, out);
    else comm.all_to_all(buf, out);
  }
}

void bm_collective(benchmark::State& state, std::string op, bool hand) {
  Communicator& comm = *g_backend->world;
  Ops& ops = *g_backend->ops;
  const int n = comm.size();
  const std::int64_t count = state.range(0) / 4 / n * n;  // fp32 elements, a multiple of n
  Tensor buf = ops.zeros({count}), out = ops.zeros({count});
  Tensor scratch = ring_scratch(ops, count, n);
  run_once(op, hand, comm, ops, buf, out, scratch);  // warm-up (connections, page faults)
  ops.synchronize();
  double total = 0;
  std::vector<double> times;
  times.reserve(static_cast<std::size_t>(state.max_iterations));
  for (auto _ : state) {
    const double t = bench::time_max_over_ranks([&] {
      run_once(op, hand, comm, ops, buf, out, scratch);
      ops.synchronize();
    });
    state.SetIterationTime(t);
    total += t;
    times.push_back(t);
  }
  std::sort(times.begin(), times.end());
  const double t_median = times.empty() ? 0.0 : times[times.size() / 2];
  const double s_bytes = 4.0 * static_cast<double>(count);
  const double algbw = total > 0 ? s_bytes * static_cast<double>(state.iterations()) / total : 0.0;
  using benchmark::Counter;
  state.counters["S"] = Counter(s_bytes, Counter::kDefaults, Counter::OneK::kIs1024);
  state.counters["algbw"] = Counter(algbw, Counter::kDefaults, Counter::OneK::kIs1000);
  state.counters["busbw"] = Counter(algbw * busbw_factor(op, n), Counter::kDefaults, Counter::OneK::kIs1000);
  // The same from the median call: robust to a rank being descheduled now and then (laptops,
  // oversubscribed or shared machines), where the mean above is dominated by a few slow calls.
  const double busbw_median = t_median > 0 ? s_bytes / t_median * busbw_factor(op, n) : 0.0;
  state.counters["busbw_median"] = Counter(busbw_median, Counter::kDefaults, Counter::OneK::kIs1000);
}

}  // namespace

int main(int argc, char** argv) {
  return bench::bench_main(argc, argv, [](int& ac, char** av, const std::string& backend_name) {
    Backend backend = make_backend(backend_name);
    g_backend = &backend;
    // One registration per (op, size, impl): the iteration count is fixed per size, the same on
    // every rank (Google Benchmark's adaptive count could differ between ranks and deadlock).
    for (const char* op : {"all_reduce", "all_gather", "reduce_scatter", "all_to_all"}) {
      for (std::int64_t bytes = 4096; bytes <= (std::int64_t{64} << 20); bytes *= 4) {
        for (const bool hand : {true, false}) {
          const std::string name = std::string(op) + (hand ? "/hand" : "/library");
          benchmark::RegisterBenchmark(name.c_str(), bm_collective, std::string(op), hand)
              ->Arg(bytes)
              ->Iterations(iterations_for(bytes))
              ->UseManualTime()
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
    bench::run_benchmarks(ac, av, "bench_collectives: " + backend.description +
                                      "; time = max over ranks per call; S, algbw, busbw in bytes(/s) as in "
                                      "nccl-tests");
    g_backend = nullptr;
  });
}
