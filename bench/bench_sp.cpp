// SPDX-License-Identifier: MIT
// bench_sp: one sequence-parallel training step (chapter 05's SpModel::step: forward and backward
// of this rank's positions, the mode's gradient sums, AdamW) per iteration on a long sequence,
// for every mode check_layout allows at the world size (megatron, ulysses, ring, zigzag; sp = the
// number of ranks). A serial baseline runs first in the same run: nn::Model and one
// nn::train_step on the whole batch on rank 0 alone (the other ranks wait), so that every mode's
// row shows its time against one processor's, measured on the same machine.
// Time = max over ranks of one step (a step ends when the slowest rank ends), after one warm-up
// step; fixed iteration counts (ranks must agree), manual timing. Counters:
//   median_ms    the median over the iterations of the step time (the Time column is the mean);
//   vs_serial    median_ms / the serial step's median (when the serial row ran: not filtered out);
//   sp           the ranks the sequence is split over;
//   core_max_ms, core_min_ms  (ring, zigzag) the attention core's compute time of one step
//                (RingWork::seconds, forward and backward), the slowest and the fastest rank,
//                medians over the iterations: under the causal mask ring's last rank computes
//                sp blocks and its first one, zigzag gives every rank the same work;
//   work_imb     (ring, zigzag) the most score entries a rank computes / the mean over ranks,
//                counted: ring 2 sp / (sp + 1), zigzag 1.
// Every mode's communication per step is checked against its formula (ch05::step_comm).
// On a machine with fewer cores than ranks the ranks take turns: compare modes at the same np.
//
// Options: --vocab --dim --heads --kv-heads --ffn --layers --seq --batch (the model: T 4096, C 64,
// H 8, Hkv 4, L 2, B 1, the rest ModelConfig's), --iters N (5), --backend, and Google Benchmark's
// --benchmark_* flags. The defaults run in about a minute at np 2 or 4 on 2 cores.
// Run:  mpirun -np 2 build/cpu/bin/bench_sp
//       mpirun -np 4 build/cpu/bin/bench_sp --seq=8192 --benchmark_filter='ring|zigzag|serial'
//       mpirun -np 4 build/cuda/bin/bench_sp --backend=cuda
#include <benchmark/benchmark.h>
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "bench/bench_mpi.hpp"
#include "bench/bench_serial.hpp"
#include "chapters/05_sequence_parallel/sp_layout.hpp"
#include "chapters/05_sequence_parallel/sp_model.hpp"
#include "common/check.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"
#include "nn/train_step.hpp"

namespace {

using namespace fivefold;

Backend* g_backend = nullptr;
ModelConfig g_cfg;
double g_serial_s = 0.0;  ///< the serial step's median time (0 until the serial row ran)

/// The serial baseline: nn::Model and one nn::train_step on the whole batch, on rank 0 only.
void bm_serial(benchmark::State& state) {
  g_serial_s = bench::median(bench::time_serial_steps(state, *g_backend->ops, g_cfg));
  state.counters["median_ms"] = g_serial_s * 1e3;
}

/// One training step of @p mode with the sequence split over every rank.
void bm_sp_step(benchmark::State& state, ch05::SpMode mode) {
  Communicator& world = *g_backend->world;
  Ops& ops = *g_backend->ops;
  const bool megatron = mode == ch05::SpMode::megatron;
  std::unique_ptr<Communicator> group = world.split(0, world.rank(), megatron ? "tp" : "sp");
  const int sp = group->size();
  ch05::SpModel model(ops, *group, g_cfg, mode);
  std::unique_ptr<nn::SummedUpdate> update = model.make_update(nn::AdamWConfig::from(g_cfg));
  const nn::Batch batch = nn::synthetic_batch(g_cfg.seed, g_cfg.vocab, g_cfg.batch, g_cfg.seq);
  auto step = [&] {
    model.step(*update, batch);
    ops.synchronize();
  };
  step();  // warm-up: allocations, connections
  group->reset_counts();
  std::vector<double> times, core_max, core_min;
  std::int64_t scores = 0;
  for (auto _ : state) {
    model.reset_ring_work();
    times.push_back(bench::time_max_over_ranks(step));
    state.SetIterationTime(times.back());
    const ch05::RingWork w = model.ring_work();  // after the timing: not in the step
    core_max.push_back(bench::reduce_over_ranks(w.seconds, MPI_MAX));
    core_min.push_back(bench::reduce_over_ranks(w.seconds, MPI_MIN));
    scores = w.scores;
  }
  const auto iters = static_cast<std::int64_t>(state.iterations());
  for (const auto& [op, want] : ch05::step_comm(mode, g_cfg, sp)) {
    const OpCount got = group->counts().count(op) ? group->counts().at(op) : OpCount{};
    FIVEFOLD_CHECK(got.calls == iters * want.calls && got.payload_bytes == iters * want.payload_bytes, "bench_sp: ",
                   ch05::sp_mode_name(mode), " counted ", got.calls, " ", op, " calls of ", got.payload_bytes,
                   " bytes in ", iters, " steps; the formula says ", want.calls, " calls of ", want.payload_bytes,
                   " bytes per step");
  }
  const double med = bench::median(times);
  state.counters["median_ms"] = med * 1e3;
  if (g_serial_s > 0) state.counters["vs_serial"] = med / g_serial_s;
  state.counters["sp"] = sp;
  if (mode == ch05::SpMode::ring || mode == ch05::SpMode::zigzag) {
    state.counters["core_max_ms"] = bench::median(core_max) * 1e3;
    state.counters["core_min_ms"] = bench::median(core_min) * 1e3;
    const auto s = static_cast<double>(scores);
    state.counters["work_imb"] = bench::reduce_over_ranks(s, MPI_MAX) / (bench::reduce_over_ranks(s, MPI_SUM) / sp);
  }
}

}  // namespace

int main(int argc, char** argv) {
  return bench::bench_main(argc, argv, [](int& ac, char** av, const std::string& backend_name) {
    const int size = MpiSession::world_size();
    ModelConfig d;  // a long sequence, a small model: attention dominates the step
    d.seq = 4096;
    d.dim = 64;
    d.heads = 8;
    d.kv_heads = 4;
    d.layers = 2;
    d.batch = 1;
    g_cfg = bench::take_model(ac, av, d);
    const int iters = bench::take_int(ac, av, "--iters", 5);
    Backend backend = make_backend(backend_name);
    g_backend = &backend;
    // Fixed iteration counts: every rank runs the same benchmarks in the same order.
    const std::string np = "/np" + std::to_string(size);
    benchmark::RegisterBenchmark(("serial/whole_batch" + np).c_str(), bm_serial)
        ->Iterations(iters)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
    std::string skipped;
    for (ch05::SpMode mode : ch05::all_sp_modes()) {
      const std::string bad = ch05::check_layout(mode, g_cfg, size);
      if (!bad.empty()) {  // e.g. Ulysses when the heads do not split over the ranks
        skipped += "; skipped " + ch05::sp_mode_name(mode) + ": " + bad;
        continue;
      }
      benchmark::RegisterBenchmark(("sp/" + ch05::sp_mode_name(mode) + np).c_str(), bm_sp_step, mode)
          ->Iterations(iters)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
    char banner[256];
    std::snprintf(banner, sizeof banner,
                  "model L=%d C=%d H=%d Hkv=%d F=%d T=%d, batch %d; sp=%d; time = max over ranks per step", g_cfg.layers,
                  g_cfg.dim, g_cfg.heads, g_cfg.kv_heads, g_cfg.ffn, g_cfg.seq, g_cfg.batch, size);
    bench::run_benchmarks(ac, av, "bench_sp: " + backend.description + "; " + banner + skipped);
    g_backend = nullptr;
  });
}
