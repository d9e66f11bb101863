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
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "chapters/03_tensor_parallel/tp_costs.hpp"
#include "chapters/03_tensor_parallel/tp_model.hpp"
#include "common/check.hpp"
#include "common/nn/adamw.hpp"
#include "common/nn/data.hpp"

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
    MPI_Barrier(MPI_COMM_WORLD);  // start together; uncounted (not through the Communicator)
    const double t0 = MPI_Wtime();
    step();
    double t = MPI_Wtime() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);  // the slowest rank
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

/// Reports nothing (ranks other than 0).
class NullReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

/// Removes "--backend X" / "--backend=X" from argv and returns X (default: $FIVEFOLD_BACKEND or cpu).
std::string take_backend(int& argc, char** argv) {
  const char* env = std::getenv("FIVEFOLD_BACKEND");
  std::string name = env && *env ? env : "cpu";
  int w = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
      name = argv[++i];
    } else if (std::strncmp(argv[i], "--backend=", 10) == 0) {
      name = argv[i] + 10;
    } else {
      argv[w++] = argv[i];
    }
  }
  argc = w;
  return name;
}

/// On ranks other than 0, drops --benchmark_out* so that only rank 0 writes the file.
void drop_output_flags(int& argc, char** argv) {
  int w = 1;
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--benchmark_out", 15) != 0) argv[w++] = argv[i];
  argc = w;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::string backend_name = take_backend(argc, argv);
  int status = 0;
  try {
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
    for (int i = 1; i < argc; ++i)  // each rank would shuffle differently and the collectives would not match
      FIVEFOLD_USAGE_CHECK(std::strncmp(argv[i], "--benchmark_enable_random_interleaving", 38) != 0,
                           argv[i], ": ranks must run the benchmarks in the same order; drop this flag "
                           "(use --benchmark_repetitions and compare medians)");
    if (rank != 0) drop_output_flags(argc, argv);
    benchmark::Initialize(&argc, argv);
    if (rank == 0) {
      std::printf("bench_tp: %s; time = one training step, max over ranks; %d rank(s) = world/tp TP groups "
                  "side by side\n", backend.description.c_str(), size);
      benchmark::RunSpecifiedBenchmarks();
    } else {
      NullReporter quiet;
      benchmark::RunSpecifiedBenchmarks(&quiet);
    }
    benchmark::Shutdown();
    g_backend = nullptr;
  } catch (const UsageError& e) {
    if (rank == 0) std::fprintf(stderr, "error: %s\n", e.what());
    status = 2;
  }
  MPI_Finalize();
  return status;
}
