// SPDX-License-Identifier: MIT
// bench_ep: one MoE layer step (chapter 06's EpMoeLayer: route, dispatch, the local experts,
// combine, and the backward with its two exchanges) per iteration, with the experts split over
// every rank (ep = the number of ranks), for top-k = 1, 2 and 4, dropless and with capacity
// factor 1 (padded buffers). A serial baseline runs first in the same run: nn::MoeLayer with
// every expert on rank 0 over all the ranks' tokens (the other ranks wait), so that every row
// shows its time against one processor's, measured on the same machine.
// Time = max over ranks of one step, after one warm-up; fixed iteration counts, manual timing.
// Counters:
//   median_ms    the median step time (the Time column is the mean);
//   vs_serial    median_ms / the serial layer's median at the same top-k;
//   expert_max_ms, expert_mean_ms  the experts' compute time of one step, busiest rank and mean
//                (medians over the iterations): what the all-to-all waits for;
//   bytes        rows moved per step by this rank's exchanges (payload), rank 0.
// Every step's all-to-all traffic summed over the ranks is checked against the formula: dropless,
// 4 B T k C 4 bytes of rows (each kept row out and back, forward and backward) and E 4 bytes of
// counts per rank; padded, 4 E b cap C 4 per rank.
//
// Options: --dim --ffn --seq --batch (tokens per rank: batch x seq; the layer: C 128, F 256,
// T 256, b 2), --experts (8), --iters N (5), --backend, and Google Benchmark's --benchmark_*.
// Run:  mpirun -np 4 build/cpu/bin/bench_ep
//       mpirun -np 2 build/cpu/bin/bench_ep --experts=16 --benchmark_filter='top2'
#include <benchmark/benchmark.h>
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "bench/bench_mpi.hpp"
#include "chapters/06_expert_parallel/ep_moe.hpp"
#include "common/check.hpp"
#include "common/rng.hpp"
#include "nn/moe.hpp"
#include "nn/params.hpp"

namespace {

using namespace fivefold;

Backend* g_backend = nullptr;
ModelConfig g_cfg;
std::map<int, double> g_serial_s;  ///< the serial layer's median per top-k

/// A deterministic random tensor [b, T, C] (the layer's input or its output gradient).
Tensor activations(Ops& ops, std::int64_t b, const std::string& name, std::int64_t offset) {
  const std::int64_t n = b * g_cfg.seq * g_cfg.dim;
  std::vector<float> v(n);
  for (std::int64_t i = 0; i < n; ++i) v[i] = rng::normal(g_cfg.seed, name, offset + i);
  return ops.upload(Tensor::from_vector(v, {b, g_cfg.seq, g_cfg.dim}));
}

/// Registers the router and experts of layer 0 (every expert, or only @p first .. first+n-1).
void add_moe_params(nn::ParamRegistry& reg, int first, int n) {
  const std::string p = "layers.0.moe.";
  reg.add(p + "router.weight", {g_cfg.experts, g_cfg.dim});
  for (int e = first; e < first + n; ++e)
    for (const char* w : {"gate_proj", "up_proj"})
      reg.add(p + "experts." + std::to_string(e) + "." + w + ".weight", {g_cfg.ffn, g_cfg.dim});
  for (int e = first; e < first + n; ++e)
    reg.add(p + "experts." + std::to_string(e) + ".down_proj.weight", {g_cfg.dim, g_cfg.ffn});
}

/// The serial layer: every expert on rank 0, over every rank's tokens.
void bm_serial(benchmark::State& state, int topk) {
  Ops& ops = *g_backend->ops;
  const int world = MpiSession::world_size();
  const bool mine = MpiSession::world_rank() == 0;
  std::unique_ptr<nn::ParamRegistry> reg;
  std::unique_ptr<nn::MoeLayer> layer;
  Tensor x, dy;
  if (mine) {
    reg = std::make_unique<nn::ParamRegistry>(ops, g_cfg.seed);
    add_moe_params(*reg, 0, g_cfg.experts);
    layer = std::make_unique<nn::MoeLayer>(ops, *reg, "layers.0.moe", g_cfg.experts, topk, 0.0, g_cfg.aux_coef);
    x = activations(ops, g_cfg.batch * world, "x", 0);
    dy = activations(ops, g_cfg.batch * world, "dy", 0);
  }
  auto step = [&] {
    if (!mine) return;
    layer->forward(x);
    layer->backward(dy);
    ops.synchronize();
  };
  step();
  std::vector<double> times;
  for (auto _ : state) {
    times.push_back(bench::time_max_over_ranks(step));
    state.SetIterationTime(times.back());
  }
  g_serial_s[topk] = bench::median(times);
  state.counters["median_ms"] = g_serial_s[topk] * 1e3;
}

/// The layer with the experts over every rank, this rank's batch x seq tokens.
void bm_ep(benchmark::State& state, int topk, double cf) {
  Communicator& world = *g_backend->world;
  Ops& ops = *g_backend->ops;
  std::unique_ptr<Communicator> ep = world.split(0, world.rank(), "ep");
  const int n = ep->size(), El = g_cfg.experts / n;
  ModelConfig c = g_cfg;
  c.topk = topk;
  c.capacity_factor = cf;
  nn::ParamRegistry reg(ops, c.seed);
  add_moe_params(reg, ep->rank() * El, El);
  ch06::EpMoeLayer layer(ops, *ep, reg, "layers.0.moe", c);
  auto acts = layer.new_acts();
  const std::int64_t b = c.batch, off = static_cast<std::int64_t>(ep->rank()) * b * c.seq * c.dim;
  const Tensor x = activations(ops, b, "x", off), dy = activations(ops, b, "dy", off);
  nn::Pass pass;
  auto step = [&] {
    layer.forward(*acts, x, pass, nullptr);
    layer.backward_input(*acts, dy);
    layer.backward_weight(*acts);
    ops.synchronize();
  };
  step();
  ep->reset_counts();
  std::vector<double> times, emax, emean;
  for (auto _ : state) {
    layer.reset_stats();
    times.push_back(bench::time_max_over_ranks(step));
    state.SetIterationTime(times.back());
    const double e = layer.stats().expert_seconds;
    emax.push_back(bench::reduce_over_ranks(e, MPI_MAX));
    emean.push_back(bench::reduce_over_ranks(e, MPI_SUM) / n);
  }
  // The traffic, summed over the ranks, against the formula.
  const auto iters = static_cast<double>(state.iterations());
  double bytes = 0;
  for (const auto& [op, cnt] : ep->counts()) bytes += static_cast<double>(cnt.payload_bytes);
  const double all = bench::reduce_over_ranks(bytes, MPI_SUM) / iters;
  const double T = c.seq, C = c.dim, B = static_cast<double>(b) * n;
  const double slots = static_cast<double>(b) * nn::expert_capacity(cf, topk, c.seq, c.experts);
  const double want = cf > 0 ? 4.0 * n * c.experts * slots * C * 4 : 4.0 * B * T * topk * C * 4 + n * c.experts * 4.0;
  FIVEFOLD_CHECK(all == want, "bench_ep: top-", topk, " cf ", cf, ": the ranks moved ", all, " bytes per step, the formula says ",
                 want);
  const double med = bench::median(times);
  state.counters["median_ms"] = med * 1e3;
  if (g_serial_s.count(topk) && g_serial_s[topk] > 0) state.counters["vs_serial"] = med / g_serial_s[topk];
  state.counters["expert_max_ms"] = bench::median(emax) * 1e3;
  state.counters["expert_mean_ms"] = bench::median(emean) * 1e3;
  state.counters["bytes"] = bytes / iters;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::bench_main(argc, argv, [](int& ac, char** av, const std::string& backend_name) {
    const int size = MpiSession::world_size();
    ModelConfig d;
    d.dim = 128;
    d.ffn = 256;
    d.seq = 256;
    d.batch = 2;
    d.experts = 8;
    d.aux_coef = 0.01;
    g_cfg = bench::take_model(ac, av, d);
    g_cfg.experts = bench::take_int(ac, av, "--experts", d.experts);
    const int iters = bench::take_int(ac, av, "--iters", 5);
    FIVEFOLD_USAGE_CHECK(g_cfg.experts % size == 0, "bench_ep: --experts ", g_cfg.experts,
                         " must be divisible by the number of ranks ", size, "; pass --experts ", 2 * size);
    Backend backend = make_backend(backend_name);
    g_backend = &backend;
    const std::string np = "/np" + std::to_string(size);
    for (int k : {1, 2, 4}) {
      if (k > g_cfg.experts) continue;
      const std::string top = "top" + std::to_string(k);
      benchmark::RegisterBenchmark(("serial/" + top + np).c_str(), bm_serial, k)
          ->Iterations(iters)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("ep/" + top + "/dropless" + np).c_str(), bm_ep, k, 0.0)
          ->Iterations(iters)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("ep/" + top + "/cf1" + np).c_str(), bm_ep, k, 1.0)
          ->Iterations(iters)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
    char banner[256];
    std::snprintf(banner, sizeof banner, "MoE layer C=%d F=%d E=%d, %d x %d tokens per rank; ep=%d; time = max over ranks",
                  g_cfg.dim, g_cfg.ffn, g_cfg.experts, g_cfg.batch, g_cfg.seq, size);
    bench::run_benchmarks(ac, av, "bench_ep: " + backend.description + "; " + banner);
    g_backend = nullptr;
  });
}
