// SPDX-License-Identifier: MIT
// bench_dp: one data-parallel training step (chapter 02's DpTrainer) per iteration, for every
// stage — naive DDP, bucketed DDP with the all-reduce overlapped with the backward and without,
// ZeRO-1, ZeRO-2 with its reduce-scatters overlapped or blocking, ZeRO-3 with prefetch and
// overlapped reduce-scatters or all blocking — at the world size it is launched with (run
// it at several -np to see the step time vs the data-parallel degree). The global batch is
// fixed, so each rank's share shrinks as 1/n (strong scaling).
// Time = max over ranks of one step (a step ends when the slowest rank ends), fixed iteration
// counts (ranks must agree), manual timing. Counters: tokens/s of the whole group, the bytes a
// rank sends per step with ring collectives (from the counted payload), and the bytes it holds
// (parameters + gradients + optimizer + communication buffers).
//
// Run:  mpirun -np 2 build/cpu/bin/bench_dp
//       mpirun -np 4 build/cpu/bin/bench_dp --layers=8 --dim=256 --ffn=512 --benchmark_filter='zero'
//       mpirun -np 2 build/cuda/bin/bench_dp --backend=cuda
#include <benchmark/benchmark.h>
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "backends/backend.hpp"
#include "chapters/02_data_parallel/dp_costs.hpp"
#include "chapters/02_data_parallel/dp_trainer.hpp"
#include "common/check.hpp"

namespace {

using namespace fivefold;

Backend* g_backend = nullptr;
ModelConfig g_cfg;

struct Variant {
  const char* name;
  ch02::DpConfig dc;
};

void bm_step(benchmark::State& state, ch02::DpConfig dc) {
  Communicator& world = *g_backend->world;
  Ops& ops = *g_backend->ops;
  std::unique_ptr<Communicator> comm = world.split(0, world.rank(), "dp");
  const int n = comm->size(), r = comm->rank();
  const ch02::BatchSplit split{g_cfg.batch, n};
  const nn::Batch local =
      nn::synthetic_batch(g_cfg.seed, g_cfg.vocab, split.count(r), g_cfg.seq, split.offset(r));
  ch02::DpTrainer trainer(ops, *comm, g_cfg, dc);
  trainer.step(local, split.weight(r));  // warm-up: allocations, connections
  comm->reset_counts();
  for (auto _ : state) {
    MPI_Barrier(MPI_COMM_WORLD);  // start together; uncounted (not through the Communicator)
    const double t0 = MPI_Wtime();
    trainer.step(local, split.weight(r));
    ops.synchronize();
    double t = MPI_Wtime() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);  // the slowest rank
    state.SetIterationTime(t);
  }
  double wire = 0;
  for (const auto& [op, c] : comm->counts()) wire += ch02::ring_wire_bytes(op, double(c.payload_bytes), n);
  const double iters = static_cast<double>(state.iterations());
  using benchmark::Counter;
  state.counters["tokens/s"] = Counter(iters * g_cfg.batch * g_cfg.seq, Counter::kIsRate);
  state.counters["sent/step"] = Counter(iters > 0 ? wire / iters : 0, Counter::kDefaults, Counter::OneK::kIs1024);
  state.counters["held"] = Counter(double(trainer.memory().total()), Counter::kDefaults, Counter::OneK::kIs1024);
}

/// Removes "--name X" / "--name=X" from argv and returns X (or @p fallback).
std::string take(int& argc, char** argv, const char* name, const std::string& fallback) {
  std::string value = fallback;
  const std::size_t len = std::strlen(name);
  int w = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0 && i + 1 < argc) {
      value = argv[++i];
    } else if (std::strncmp(argv[i], name, len) == 0 && argv[i][len] == '=') {
      value = argv[i] + len + 1;
    } else {
      argv[w++] = argv[i];
    }
  }
  argc = w;
  return value;
}

/// On ranks other than 0, drops --benchmark_out* so that only rank 0 writes the file.
void drop_output_flags(int& argc, char** argv) {
  int w = 1;
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--benchmark_out", 15) != 0) argv[w++] = argv[i];
  argc = w;
}

/// Reports nothing (ranks other than 0).
class NullReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const char* env = std::getenv("FIVEFOLD_BACKEND");
  const std::string backend_name = take(argc, argv, "--backend", env && *env ? env : "cpu");
  int status = 0;
  try {
    // A model a little larger than the chapter's default, so a step is mostly compute.
    g_cfg.layers = std::stoi(take(argc, argv, "--layers", "4"));
    g_cfg.dim = std::stoi(take(argc, argv, "--dim", "128"));
    g_cfg.ffn = std::stoi(take(argc, argv, "--ffn", "256"));
    g_cfg.seq = std::stoi(take(argc, argv, "--seq", "64"));
    g_cfg.batch = std::stoi(take(argc, argv, "--batch", "16"));
    const int iters = std::stoi(take(argc, argv, "--iters", "10"));
    const double bucket_mb = std::stod(take(argc, argv, "--bucket-mb", "0.25"));
    g_cfg.validate();
    FIVEFOLD_USAGE_CHECK(g_cfg.batch >= size, "--batch ", g_cfg.batch, " is smaller than the ", size,
                         " ranks; pass --batch >= ", size);
    for (int i = 1; i < argc; ++i)  // each rank would shuffle differently and the collectives would not match
      FIVEFOLD_USAGE_CHECK(std::strncmp(argv[i], "--benchmark_enable_random_interleaving", 38) != 0, argv[i],
                           ": ranks must run the benchmarks in the same order; drop this flag");
    Backend backend = make_backend(backend_name);
    g_backend = &backend;
    auto dc = [&](int zero, double mb, bool overlap, bool prefetch) {
      ch02::DpConfig c;
      c.zero = zero;
      c.bucket_mb = mb;
      c.overlap = overlap;
      c.prefetch = prefetch;
      return c;
    };
    const Variant variants[] = {
        {"ddp_naive", dc(0, 0, true, true)},          {"ddp_buckets_overlap", dc(0, bucket_mb, true, true)},
        {"ddp_buckets_after_bwd", dc(0, bucket_mb, false, true)}, {"zero1", dc(1, 0, true, true)},
        {"zero2", dc(2, 0, true, true)},              {"zero2_blocking", dc(2, 0, false, true)},
        {"zero3_prefetch", dc(3, 0, true, true)},     {"zero3_blocking", dc(3, 0, false, false)},
    };
    for (const Variant& v : variants) {
      const std::string name = std::string(v.name) + "/np" + std::to_string(size);
      benchmark::RegisterBenchmark(name.c_str(), bm_step, v.dc)
          ->Iterations(iters)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
    if (rank != 0) drop_output_flags(argc, argv);
    benchmark::Initialize(&argc, argv);
    if (rank == 0) {
      std::printf("bench_dp: %s; model L=%d C=%d F=%d T=%d, global batch %d; time = max over ranks per step\n",
                  backend.description.c_str(), g_cfg.layers, g_cfg.dim, g_cfg.ffn, g_cfg.seq, g_cfg.batch);
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
  } catch (const std::invalid_argument& e) {  // std::stoi/stod on a bad number
    if (rank == 0) std::fprintf(stderr, "error: a model option is not a number (%s); e.g. --layers=4\n", e.what());
    status = 2;
  }
  MPI_Finalize();
  return status;
}
