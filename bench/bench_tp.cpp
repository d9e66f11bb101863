// SPDX-License-Identifier: MIT
// bench_tp: one training step (forward, backward, AdamW) of chapter 03's tensor-parallel model
// against the TP degree. With world size W, degree tp splits the world into W/tp TP groups that
// run the same step side by side, so every rank always does 1/tp of a model's matmuls: the time
// shows what splitting the model saves in compute and what its all-reduces cost. Two models: the
// chapter's default (tiny: latency-bound) and a wider one (C 256, F 1024, V 512).
// Counters: tp, the all-reduce payload of one step (formula = counted), the bytes a ring sends
// per rank for it (2(tp-1)/tp of the payload), and the parameters each rank holds.
// t = the time of one step, the max over ranks (the step ends when the slowest rank ends); fixed
// iteration counts, the same on every rank; only rank 0 reports.
//
// Run:  mpirun -np 4 build/cpu/bin/bench_tp
//       mpirun -np 4 build/cpu/bin/bench_tp --benchmark_filter='wide'
//       mpirun -np 2 build/cuda/bin/bench_tp --backend=cuda   (or FIVEFOLD_BACKEND=cuda)
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "bench/bench_mpi.hpp"
#include "chapters/03_tensor_parallel/tp_costs.hpp"
#include "chapters/03_tensor_parallel/tp_model.hpp"
#include "common/check.hpp"
#include "nn/adamw.hpp"
#include "nn/data.hpp"

namespace {

using namespace fivefold;

Backend* g_backend = nullptr;

/// The chapter's default model (8 query heads, 4 kv heads; tp 1, 2, 4 divide it).
ModelConfig tiny() {
  ModelConfig c;
  c.heads = 8;
  c.kv_heads = 4;
  return c;
}

/// A wider model: more work per all-reduce byte.
ModelConfig wide() {
  ModelConfig c = tiny();
  c.dim = 256;
  c.ffn = 1024;
  c.vocab = 512;
  c.seq = 64;
  c.batch = 4;
  return c;
}

void bm_tp_step(benchmark::State& state, ModelConfig cfg, int tp_degree) {
  Communicator& world = *g_backend->world;
  Ops& ops = *g_backend->ops;
  std::unique_ptr<Communicator> tp = world.split(world.rank() / tp_degree, world.rank(), "tp");
  ch03::TpModel model(ops, *tp, cfg);
  nn::AdamW opt(ops, nn::AdamWConfig::from(cfg));
  for (nn::Param& p : model.params().all()) opt.add(p.value, p.grad);
  const nn::Batch batch = nn::synthetic_batch(cfg.seed, cfg.vocab, cfg.batch, cfg.seq);
  auto step = [&] {
    model.zero_grad();
    model.forward(batch.inputs, batch.targets);
    model.backward();
    opt.step();
    ops.synchronize();
  };
  step();  // warm-up (buffers, connections, page faults)
  tp->reset_counts();
  for (auto _ : state) {
    const double t = bench::time_max_over_ranks(step);
    state.SetIterationTime(t);
  }
  const auto it = tp->counts().find("all_reduce");
  const double per_step = it == tp->counts().end() ? 0.0
                                                    : static_cast<double>(it->second.payload_bytes) /
                                                          static_cast<double>(state.iterations());
  const ch03::CommCost f = ch03::model_forward_cost(cfg), b = ch03::model_backward_cost(cfg);
  FIVEFOLD_CHECK(per_step == static_cast<double>(f.bytes + b.bytes), "bench_tp: counted ", per_step,
                 " all-reduce bytes per step, the formula says ", f.bytes + b.bytes);
  using benchmark::Counter;
  state.counters["tp"] = tp_degree;
  state.counters["allreduce_B"] = Counter(per_step, Counter::kDefaults, Counter::OneK::kIs1024);
  state.counters["ring_B/rank"] =
      Counter(ch03::ring_wire_bytes(per_step, tp_degree), Counter::kDefaults, Counter::OneK::kIs1024);
  state.counters["params/rank"] = static_cast<double>(ch03::params_per_rank(cfg, tp_degree));
}

}  // namespace

int main(int argc, char** argv) {
  return bench::bench_main(argc, argv, [](int& ac, char** av, const std::string& backend_name) {
    const int size = MpiSession::world_size();
    Backend backend = make_backend(backend_name);
    g_backend = &backend;
    // One registration per (model, tp): tp runs over the degrees that divide the world and the
    // model; the iteration count is fixed (ranks must agree, adaptive counts could deadlock).
    const std::pair<const char*, ModelConfig> models[] = {{"tiny", tiny()}, {"wide", wide()}};
    for (const auto& [name, cfg] : models) {
      for (int tp : ch03::valid_tp_degrees(cfg)) {
        if (size % tp != 0) continue;
        const std::string label = std::string("tp_step/") + name + "/tp:" + std::to_string(tp);
        benchmark::RegisterBenchmark(label.c_str(), bm_tp_step, cfg, tp)
            ->Iterations(std::string(name) == "tiny" ? 20 : 5)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
    bench::run_benchmarks(ac, av, "bench_tp: " + backend.description + "; time = one training step, max over ranks; " +
                                      std::to_string(size) + " rank(s) = world/tp TP groups side by side");
    g_backend = nullptr;
  });
}
