// SPDX-License-Identifier: MIT
// bench_hybrid: one training step of chapter 07's hybrid model for every layout of tp, sp (ring),
// pp and dp in {1, 2, 4} whose product is the world and which the model can take, next to the
// serial step on rank 0 (the same global batch: every layout does the same work, cut another
// way). Each layout's counted traffic is checked against the chapter's formulas
// (ch07::check_traffic's, via the planner) before its time is reported.
// Counters: median_ms (one step, max over ranks), vs_serial (that over the serial median), the
// payload a rank hands to each group per step, and the parameters it holds.
//
// Options: --vocab --dim --heads --kv-heads --ffn --layers --seq --batch (the model: V 512,
// C 256, H 8, Hkv 4, F 1024, L 4, T 128, B 16), --microbatches M (4), --iters N (5), --backend,
// and Google Benchmark's --benchmark_* flags.
// Run:  mpirun -np 4 build/cpu/bin/bench_hybrid
//       mpirun -np 8 build/cpu/bin/bench_hybrid --benchmark_filter='pp:2'
#include <benchmark/benchmark.h>

#include <string>

#include "backends/backend.hpp"
#include "bench/bench_mpi.hpp"
#include "bench/bench_serial.hpp"
#include "chapters/07_hybrid_parallel/hybrid.hpp"
#include "chapters/07_hybrid_parallel/planner.hpp"
#include "common/check.hpp"

namespace {

using namespace fivefold;

Backend* g_backend = nullptr;
ModelConfig g_cfg;
int g_m = 4;
double g_serial_s = 0.0;  ///< the serial step's median time (0 until the serial row ran)

void bm_serial(benchmark::State& state) {
  g_serial_s = bench::median(bench::time_serial_steps(state, *g_backend->ops, g_cfg));
  state.counters["median_ms"] = g_serial_s * 1e3;
}

void bm_hybrid_step(benchmark::State& state, std::array<int, 5> d) {
  Communicator& world = *g_backend->world;
  Ops& ops = *g_backend->ops;
  const ProcessGrid grid({d[0], d[1], d[2], d[3], d[4]}, kDefaultOrder, world.size());
  ch07::HybridConfig hc;
  hc.model = g_cfg;
  hc.microbatches = g_m;
  hc.bucketed = false;  // one packed all-reduce per group, as the planner counts it
  const GridComms comms(world, grid, ch07::hybrid_sets());
  ch07::HybridModel model(ops, world, comms, hc);
  auto sync = model.make_sync(nn::AdamWConfig::from(g_cfg));
  const nn::Batch batch = nn::stream_batch(g_cfg, 0);
  auto step = [&] {
    model.step(*sync, batch);
    ops.synchronize();
  };
  step();  // warm-up: allocations, connections
  for (const char* g : ch07::kHybridGroups) comms.get(AxisSet::parse(g)).reset_counts();
  std::vector<double> times;
  for (auto _ : state) {
    times.push_back(bench::time_max_over_ranks(step));
    state.SetIterationTime(times.back());
  }
  const auto iters = static_cast<std::int64_t>(state.iterations());
  ch07::PlanLayout l;
  l.tp = d[0], l.sp = d[1], l.ep = d[2], l.dp = d[3], l.pp = d[4], l.m = g_m;
  const int stage = grid.coord(world.rank(), Axis::pp);
  for (const ch07::GroupTraffic& t : ch07::rank_group_bytes(g_cfg, l, stage)) {
    const CommCounts& got = comms.get(AxisSet::parse(t.group)).counts();
    const OpCount c = got.count(t.op) ? got.at(t.op) : OpCount{};
    FIVEFOLD_CHECK(c.calls == iters * t.calls && c.payload_bytes == iters * t.bytes, "bench_hybrid: ", t.group, " ",
                   t.op, " counted ", c.calls, " calls of ", c.payload_bytes, " bytes in ", iters,
                   " steps; the planner says ", t.calls, " of ", t.bytes, " per step");
    state.counters[t.group + "_" + t.op + "_B/step"] =
        benchmark::Counter(static_cast<double>(t.bytes), benchmark::Counter::kDefaults, benchmark::Counter::OneK::kIs1024);
  }
  const double med = bench::median(times);
  state.counters["median_ms"] = med * 1e3;
  if (g_serial_s > 0) state.counters["vs_serial"] = med / g_serial_s;
  state.counters["params/rank"] = static_cast<double>(model.params().numel());
}

}  // namespace

int main(int argc, char** argv) {
  return bench::bench_main(argc, argv, [](int& ac, char** av, const std::string& backend_name) {
    const int W = MpiSession::world_size();
    g_cfg = bench::take_model(ac, av, bench::wide_model(128));
    g_m = bench::take_int(ac, av, "--microbatches", 4);
    const int iters = bench::take_int(ac, av, "--iters", 5);
    Backend backend = make_backend(backend_name);
    g_backend = &backend;
    const std::string np = "/np" + std::to_string(W);
    benchmark::RegisterBenchmark(("serial/whole_batch" + np).c_str(), bm_serial)
        ->Iterations(iters)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
    std::string skipped;
    for (int tp : {1, 2, 4})
      for (int sp : {1, 2, 4})
        for (int pp : {1, 2, 4}) {
          if (W % (tp * sp * pp) != 0) continue;
          const std::array<int, 5> deg = {tp, sp, 1, W / (tp * sp * pp), pp};
          ch07::HybridConfig hc;
          hc.model = g_cfg;
          hc.microbatches = g_m;
          const std::string name = "hybrid/tp:" + std::to_string(tp) + "/sp:" + std::to_string(sp) + "/pp:" +
                                   std::to_string(pp) + "/dp:" + std::to_string(deg[3]);
          const std::string bad = ch07::hybrid_blocker(ProcessGrid({deg[0], deg[1], 1, deg[3], deg[4]}, kDefaultOrder, W), hc);
          if (!bad.empty()) {  // e.g. more microbatches than a data rank's rows
            skipped += "; skipped " + name + ": " + bad;
            continue;
          }
          benchmark::RegisterBenchmark((name + np).c_str(), bm_hybrid_step, deg)
              ->Iterations(iters)
              ->UseManualTime()
              ->Unit(benchmark::kMillisecond);
        }
    char banner[256];
    std::snprintf(banner, sizeof banner, "model V=%d C=%d H=%d Hkv=%d F=%d L=%d T=%d, global batch %d, m %d; %d rank(s)",
                  g_cfg.vocab, g_cfg.dim, g_cfg.heads, g_cfg.kv_heads, g_cfg.ffn, g_cfg.layers, g_cfg.seq, g_cfg.batch,
                  g_m, W);
    bench::run_benchmarks(ac, av, "bench_hybrid: " + backend.description + "; " + banner +
                                      "; time = one step, max over ranks" + skipped);
    g_backend = nullptr;
  });
}
