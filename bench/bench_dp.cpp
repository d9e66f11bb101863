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
// Options: --vocab --dim --heads --kv-heads --ffn --layers --seq --batch (the model: L 4, C 128,
// F 256, T 64, B 16, the rest the chapter's), --iters N (10), --bucket-mb M (0.25), --backend,
// and Google Benchmark's --benchmark_* flags.
// Run:  mpirun -np 2 build/cpu/bin/bench_dp
//       mpirun -np 4 build/cpu/bin/bench_dp --layers=8 --dim=256 --ffn=512 --benchmark_filter='zero'
//       mpirun -np 2 build/cuda/bin/bench_dp --backend=cuda
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "backends/backend.hpp"
#include "bench/bench_mpi.hpp"
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
  const std::unique_ptr<ch02::DpTrainer> made = ch02::DpTrainer::make(ops, *comm, g_cfg, dc);
  ch02::DpTrainer& trainer = *made;
  trainer.step(local, split.weight(r));  // warm-up: allocations, connections
  comm->reset_counts();
  for (auto _ : state) {
    state.SetIterationTime(bench::time_max_over_ranks([&] {
      trainer.step(local, split.weight(r));
      ops.synchronize();
    }));
  }
  double wire = 0;
  for (const auto& [op, c] : comm->counts()) wire += ch02::ring_wire_bytes(op, double(c.payload_bytes), n);
  const double iters = static_cast<double>(state.iterations());
  using benchmark::Counter;
  state.counters["tokens/s"] = Counter(iters * g_cfg.batch * g_cfg.seq, Counter::kIsRate);
  state.counters["sent/step"] = Counter(iters > 0 ? wire / iters : 0, Counter::kDefaults, Counter::OneK::kIs1024);
  state.counters["held"] = Counter(double(trainer.memory().total()), Counter::kDefaults, Counter::OneK::kIs1024);
}

}  // namespace

int main(int argc, char** argv) {
  return bench::bench_main(argc, argv, [](int& ac, char** av, const std::string& backend_name) {
    const int size = MpiSession::world_size();
    g_cfg = bench::take_model(ac, av, bench::bench_model(4));
    const int iters = bench::take_int(ac, av, "--iters", 10);
    const double bucket_mb = bench::take_number(ac, av, "--bucket-mb", 0.25);
    FIVEFOLD_USAGE_CHECK(bucket_mb > 0, "--bucket-mb ", bucket_mb, " must be > 0 (the naive, unbucketed DDP is "
                         "the ddp_naive variant)");
    FIVEFOLD_USAGE_CHECK(g_cfg.batch >= size, "--batch ", g_cfg.batch, " is smaller than the ", size,
                         " ranks; pass --batch >= ", size);
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
    char banner[256];
    std::snprintf(banner, sizeof banner, "model L=%d C=%d F=%d T=%d, global batch %d; time = max over ranks per step",
                  g_cfg.layers, g_cfg.dim, g_cfg.ffn, g_cfg.seq, g_cfg.batch);
    bench::run_benchmarks(ac, av, "bench_dp: " + backend.description + "; " + banner);
    g_backend = nullptr;
  });
}
