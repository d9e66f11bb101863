// SPDX-License-Identifier: MIT
// bench_dp_tp: one training step of chapter 07's DP x TP trainer for every way of cutting the
// world W into dp x tp (tp over the degrees that divide both W and the model), with the DP
// buckets overlapped with the backward and after it. The global batch is fixed, so the layouts
// do the same work in all: what changes is how it is cut (dp: rows; tp: every matrix) and what
// moves (tp: activations every layer; dp: 1/tp of the gradients once per step).
// Counters: tokens/s of the whole job, the payload a rank hands to the tp and to the dp
// all-reduces per step (checked against chapter 03's formula and params_per_rank), and the
// parameters a rank holds. t = one step, max over ranks; fixed iteration counts; rank 0 reports.
//
// Options: --vocab --dim --heads --kv-heads --ffn --layers --seq --batch (the model: V 512,
// C 256, H 8, Hkv 4, F 1024, L 4, T 64, B 16), --iters N (10), --backend, and Google
// Benchmark's --benchmark_* flags.
// Run:  mpirun -np 4 build/cpu/bin/bench_dp_tp
//       mpirun -np 4 build/cpu/bin/bench_dp_tp --dim=512 --ffn=2048 --benchmark_filter='overlap'
//       mpirun -np 2 build/cuda/bin/bench_dp_tp --backend=cuda
#include <benchmark/benchmark.h>

#include <string>

#include "backends/backend.hpp"
#include "bench/bench_mpi.hpp"
#include "chapters/02_data_parallel/flat_layout.hpp"
#include "chapters/03_tensor_parallel/tp_costs.hpp"
#include "chapters/03_tensor_parallel/tp_layout.hpp"
#include "chapters/07_hybrid_parallel/dp_tp.hpp"
#include "common/check.hpp"

namespace {

using namespace fivefold;

Backend* g_backend = nullptr;
ModelConfig g_cfg;

std::int64_t payload(const CommCounts& counts, const std::string& op) {
  const auto it = counts.find(op);
  return it == counts.end() ? 0 : it->second.payload_bytes;
}

void bm_dp_tp_step(benchmark::State& state, int tp_degree, bool overlap) {
  Communicator& world = *g_backend->world;
  Ops& ops = *g_backend->ops;
  const int dp_degree = world.size() / tp_degree;
  const ch07::DpTpComms comms = ch07::split_dp_tp(world, tp_degree);  // tp fastest: rank = t + tp*d
  Communicator& tp = *comms.tp;
  Communicator& dp = *comms.dp;
  ch07::DpTpConfig dc;
  dc.overlap = overlap;
  ch07::DpTpTrainer trainer(ops, tp, dp, g_cfg, dc);
  const ch02::BatchSplit split{g_cfg.batch, dp_degree};
  const int d = dp.rank();
  const nn::Batch local = nn::synthetic_batch(g_cfg.seed, g_cfg.vocab, split.count(d), g_cfg.seq, split.offset(d));
  trainer.step(local, split.weight(d));  // warm-up: allocations, connections
  tp.reset_counts();
  dp.reset_counts();
  for (auto _ : state) {
    state.SetIterationTime(bench::time_max_over_ranks([&] {
      trainer.step(local, split.weight(d));
      ops.synchronize();
    }));
  }
  const double iters = static_cast<double>(state.iterations());
  const double tp_bytes = static_cast<double>(payload(tp.counts(), "all_reduce")) / iters;
  const double dp_bytes = static_cast<double>(payload(dp.counts(), overlap ? "iall_reduce" : "all_reduce")) / iters;
  ModelConfig local_cfg = g_cfg;
  local_cfg.batch = split.count(d);
  const ch03::CommCost f = ch03::model_forward_cost(local_cfg), b = ch03::model_backward_cost(local_cfg);
  const std::int64_t shard = ch03::params_per_rank(g_cfg, tp_degree);
  FIVEFOLD_CHECK(tp_bytes == static_cast<double>(f.bytes + b.bytes) && dp_bytes == 4.0 * static_cast<double>(shard),
                 "bench_dp_tp: counted ", tp_bytes, " tp and ", dp_bytes, " dp bytes per step; the formulas say ",
                 f.bytes + b.bytes, " and ", 4 * shard);
  FIVEFOLD_CHECK(tp.counts().size() == 1 && dp.counts().size() == 1, "bench_dp_tp: ", tp.counts().size(), " and ",
                 dp.counts().size(), " kinds of calls on the tp and dp groups; expected only their all-reduces");
  using benchmark::Counter;
  state.counters["tokens/s"] = Counter(iters * g_cfg.batch * g_cfg.seq, Counter::kIsRate);
  state.counters["tp_B/step"] = Counter(tp_bytes, Counter::kDefaults, Counter::OneK::kIs1024);
  state.counters["dp_B/step"] = Counter(dp_bytes, Counter::kDefaults, Counter::OneK::kIs1024);
  state.counters["params/rank"] = static_cast<double>(shard);
}

}  // namespace

int main(int argc, char** argv) {
  return bench::bench_main(argc, argv, [](int& ac, char** av, const std::string& backend_name) {
    const int W = MpiSession::world_size();
    g_cfg = bench::take_model(ac, av, bench::wide_model(64));
    const int iters = bench::take_int(ac, av, "--iters", 10);
    FIVEFOLD_USAGE_CHECK(g_cfg.batch >= W, "--batch ", g_cfg.batch, " is smaller than the ", W,
                         " ranks (dp can reach ", W, "); pass --batch >= ", W);
    Backend backend = make_backend(backend_name);
    g_backend = &backend;
    for (int tp : ch03::valid_tp_degrees(g_cfg)) {
      if (W % tp != 0) continue;
      for (const bool overlap : {true, false}) {
        const std::string name = "dp_tp/dp:" + std::to_string(W / tp) + "/tp:" + std::to_string(tp) +
                                 (overlap ? "/overlap" : "/after_bwd");
        benchmark::RegisterBenchmark(name.c_str(), bm_dp_tp_step, tp, overlap)
            ->Iterations(iters)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
    char banner[256];
    std::snprintf(banner, sizeof banner, "model V=%d C=%d H=%d Hkv=%d F=%d L=%d T=%d, global batch %d; %d rank(s)",
                  g_cfg.vocab, g_cfg.dim, g_cfg.heads, g_cfg.kv_heads, g_cfg.ffn, g_cfg.layers, g_cfg.seq, g_cfg.batch,
                  W);
    bench::run_benchmarks(ac, av, "bench_dp_tp: " + backend.description + "; " + banner +
                                      "; time = one step, max over ranks");
    g_backend = nullptr;
  });
}
