// SPDX-License-Identifier: MIT
// bench_pp: one pipeline-parallel training step (chapter 04's PipelineRunner: the passes with
// real sends and receives, then each stage's AdamW) per iteration, for every schedule — GPipe,
// 1F1B, interleaved 1F1B (v chunks per rank, where --layers divides by v*p) and ZB-H1 — and
// m = p, 2p, 4p microbatches, at the world size it is launched with (p = the number of ranks:
// one stage per rank). The global batch is fixed and cut into m microbatches. A serial baseline
// runs first: the whole model on rank 0 alone, one nn::train_step on the whole batch (the other
// ranks wait), so that every pipelined row shows its time against one processor's.
// Time = max over ranks of one step (a step ends when the slowest rank ends), fixed iteration
// counts (ranks must agree), manual timing. Counters of a pipelined row:
//   sent/step  the most point-to-point bytes one rank sends per step ([b, T, C] fp32 activations
//              forward, their gradients back; a middle stage sends both ways). The messages of
//              all ranks are checked against 2(v*p-1)*m, their bytes against that times b*T*C*4;
//   idle       the measured idle share of the step: 1 - busy / span, averaged over ranks and
//              iterations, where busy is the rank's time inside its passes (StepRecord events,
//              a receive's wait excluded) and span the end of the last pass of any rank;
//   bubble     the closed form (ch04::bubble_formula): (p-1)/(m+p-1), (p-1)/(v*m+p-1),
//              (p-1)/(3m+p-1);
//   vs_serial  this step's time / the serial step's (when the serial row ran: not filtered out);
//   ideal      1 / (p (1 - bubble)): vs_serial of equal stages, free messages, and microbatches
//              as fast per token as the whole batch.
// On a machine with fewer cores than ranks the ranks take turns, and idle and vs_serial say
// more about the scheduler than about the pipeline; compare schedules at the same np only. With
// MPI on CPUs a posted send progresses only inside MPI calls: a stage that sends and computes
// without receiving (GPipe's last stage in its backward) delivers late, and idle shows it.
//
// Options: --vocab --dim --heads --kv-heads --ffn --layers --seq --batch (the model: L 8, C 128,
// F 256, T 64, B 16, the rest the chapter's; --batch must be a multiple of 4p, --layers >= p),
// --iters N (10), --virtual-stages V (2), --backend, and Google Benchmark's --benchmark_* flags.
// The defaults run in 15-30 s at np 2 or 4 on 2 cores.
// Run:  mpirun -np 2 build/cpu/bin/bench_pp
//       mpirun -np 4 build/cpu/bin/bench_pp --dim=256 --ffn=512 --benchmark_filter='1f1b|serial'
//       mpirun -np 4 build/cuda/bin/bench_pp --backend=cuda
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
#include "chapters/04_pipeline_parallel/pp_link.hpp"
#include "chapters/04_pipeline_parallel/pp_runner.hpp"
#include "chapters/04_pipeline_parallel/pp_schedule.hpp"
#include "common/check.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"
#include "nn/train_step.hpp"

namespace {

using namespace fivefold;

Backend* g_backend = nullptr;
ModelConfig g_cfg;
double g_serial_s = 0.0;  ///< the serial step's mean time (0 until the serial row ran)

/// The serial baseline: nn::Model and one nn::train_step on the whole batch, on rank 0 only.
void bm_serial(benchmark::State& state) {
  const std::vector<double> t = bench::time_serial_steps(state, *g_backend->ops, g_cfg);
  double total = 0.0;
  for (double x : t) total += x;
  g_serial_s = t.empty() ? 0.0 : total / static_cast<double>(t.size());
}

/// One pipelined training step of @p kind over @p m microbatches and @p v chunks per rank.
void bm_pp_step(benchmark::State& state, ch04::ScheduleKind kind, int m, int v) {
  Communicator& world = *g_backend->world;
  Ops& ops = *g_backend->ops;
  std::unique_ptr<Communicator> pp = world.split(0, world.rank(), "pp");  // rank r is stage r
  const int p = pp->size(), r = pp->rank();
  ch04::PipelineStage stage(ops, g_cfg, p, v, r);
  ch04::StageLink link(*pp, ops);
  ch04::PipelineRunner runner(stage, link, ch04::make_schedule(kind, p, m, v));
  nn::LocalUpdate update(ops, stage.params(), nn::AdamWConfig::from(g_cfg));  // each stage updates its layers
  const std::vector<nn::Batch> micro =
      ch04::split_batch(nn::synthetic_batch(g_cfg.seed, g_cfg.vocab, g_cfg.batch, g_cfg.seq), m);
  ch04::StepRecord rec;
  auto step = [&] {
    runner.step(update, micro, &rec);
    ops.synchronize();
  };
  step();  // warm-up: allocations, connections
  link.reset();
  double total = 0.0, idle = 0.0;
  for (auto _ : state) {
    const double t = bench::time_max_over_ranks(step);
    state.SetIterationTime(t);
    total += t;
    // Idle share of this step, from the passes' times (after the timing: not in the step).
    double busy = 0.0, end = 0.0;
    for (const ch04::PassEvent& e : rec.events) busy += e.end - e.start, end = std::max(end, e.end);
    const double span = bench::reduce_over_ranks(end, MPI_MAX);
    idle += span > 0 ? 1.0 - bench::reduce_over_ranks(busy, MPI_SUM) / (p * span) : 0.0;
  }
  const double iters = static_cast<double>(state.iterations());
  std::int64_t calls = 0, bytes = 0;
  for (const auto& [route, c] : link.sent()) calls += c.calls, bytes += c.payload_bytes;
  const double all_calls = bench::reduce_over_ranks(static_cast<double>(calls), MPI_SUM) / iters;
  const double all_bytes = bench::reduce_over_ranks(static_cast<double>(bytes), MPI_SUM) / iters;
  const double msg = static_cast<double>(g_cfg.batch / m) * g_cfg.seq * g_cfg.dim * 4;  // one [b, T, C] fp32
  const double want = static_cast<double>(ch04::messages_formula(p, m, v));
  FIVEFOLD_CHECK(all_calls == want && all_bytes == want * msg, "bench_pp: ", ch04::schedule_name(kind), " m ", m,
                 ": counted ", all_calls, " messages, ", all_bytes, " bytes per step over all links; the layout says ",
                 want, " messages of ", msg, " bytes");
  const double bubble = ch04::bubble_formula(kind, p, m, v);
  using benchmark::Counter;
  state.counters["sent/step"] = Counter(bench::reduce_over_ranks(static_cast<double>(bytes), MPI_MAX) / iters, Counter::kDefaults,
                                        Counter::OneK::kIs1024);
  state.counters["idle"] = idle / iters;
  state.counters["bubble"] = bubble;
  if (g_serial_s > 0) state.counters["vs_serial"] = total / iters / g_serial_s;
  state.counters["ideal"] = 1.0 / (p * (1.0 - bubble));
}

}  // namespace

int main(int argc, char** argv) {
  return bench::bench_main(argc, argv, [](int& ac, char** av, const std::string& backend_name) {
    const int size = MpiSession::world_size();
    g_cfg = bench::take_model(ac, av, bench::bench_model(8));  // 8 layers: interleaving at p 4 needs v*p = 8
    const int iters = bench::take_int(ac, av, "--iters", 10);
    const int v = bench::take_int(ac, av, "--virtual-stages", 2, 2);
    FIVEFOLD_USAGE_CHECK(g_cfg.layers >= size, "--layers ", g_cfg.layers, " is fewer than the ", size,
                         " stages (one per rank); pass --layers >= ", size);
    FIVEFOLD_USAGE_CHECK(g_cfg.batch % (4 * size) == 0, "--batch ", g_cfg.batch, " must be a multiple of 4p = ",
                         4 * size, " (m = p, 2p, 4p microbatches divide it); pass --batch ", 4 * size);
    Backend backend = make_backend(backend_name);
    g_backend = &backend;
    // Fixed iteration counts: every rank runs the same benchmarks in the same order (ranks that
    // disagreed would deadlock in the sends and receives).
    const std::string np = "/np" + std::to_string(size);
    benchmark::RegisterBenchmark(("serial/whole_batch" + np).c_str(), bm_serial)
        ->Iterations(iters)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
    using ch04::ScheduleKind;
    for (ScheduleKind k : {ScheduleKind::gpipe, ScheduleKind::one_f_one_b, ScheduleKind::interleaved,
                           ScheduleKind::zb_h1}) {
      const int kv = k == ScheduleKind::interleaved ? v : 1;
      for (int m : {size, 2 * size, 4 * size}) {
        if (!ch04::check_layout(k, g_cfg.layers, size, m, kv, g_cfg.batch).empty()) continue;  // e.g. L % vp != 0
        const std::string name = "pp/" + ch04::schedule_name(k) + (kv > 1 ? ":v" + std::to_string(kv) : "") +
                                 "/m:" + std::to_string(m) + np;
        benchmark::RegisterBenchmark(name.c_str(), bm_pp_step, k, m, kv)
            ->Iterations(iters)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
    char banner[256];
    std::snprintf(banner, sizeof banner,
                  "model L=%d C=%d F=%d T=%d, global batch %d; p=%d stages; time = max over ranks per step", g_cfg.layers,
                  g_cfg.dim, g_cfg.ffn, g_cfg.seq, g_cfg.batch, size);
    bench::run_benchmarks(ac, av, "bench_pp: " + backend.description + "; " + banner);
    g_backend = nullptr;
  });
}
