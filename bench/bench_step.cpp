// SPDX-License-Identifier: MIT
// bench_step: one training step of the serial reference model (zero_grad, forward + loss,
// backward, AdamW) on a backend, reported as tokens/s and model FLOP/s, next to the backend's
// own GEMM peak (Ops::matmul on square fp32 matrices) measured in the same run.
//   FLOPs per step = B*T * (6 N_matmul + 12 L T C)     (chapter 01's README, "Counting")
// N_matmul counts the weights every token multiplies (all but the embedding table and norm
// gains; k of E experts); the attention term counts all T x T query/key pairs, as our kernels
// compute them (no causal halving). "of_gemm_peak" = model FLOP/s / the best GEMM FLOP/s.
// Sizes: tiny (chapter 01's defaults), small (V 4096, C 256, F 768, L 4, H 8, Hkv 4, T 128, B 2);
// "124M" (V 32000, C 768, F 2048, L 12, H 12, Hkv 4, T 1024, B 8) is opt-in: --with-124m, with
// --batch-124m B (default 8; on one CPU core a step of B 1 already takes tens of seconds).
// Fixed iteration counts, the same on every rank (each rank runs its own serial model); only
// rank 0 reports.
// Run: build/cpu/bin/bench_step
//      build/cpu/bin/bench_step --with-124m --batch-124m 1 --benchmark_filter='gemm|124M'
//      build/cuda/bin/bench_step --backend=cuda --with-124m
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "backends/backend.hpp"
#include "bench/bench_mpi.hpp"
#include "chapters/01_reference_model/costs.hpp"
#include "common/check.hpp"
#include "nn/adamw.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"

namespace {

using namespace fivefold;
using Clock = std::chrono::steady_clock;

Backend* g_backend = nullptr;
double g_gemm_peak = 0.0;  // best FLOP/s of bm_gemm so far (registered first, so it runs first)

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void bm_gemm(benchmark::State& state) {
  Ops& ops = *g_backend->ops;
  const std::int64_t n = state.range(0);
  Tensor a = ops.empty({n, n}), b = ops.empty({n, n}), c = ops.empty({n, n});
  ops.fill(a, 0.5f);
  ops.fill(b, 0.25f);
  ops.matmul(c, a, b, false, false);  // warm-up
  ops.synchronize();
  double total = 0.0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    ops.matmul(c, a, b, false, false);
    ops.synchronize();
    const double t = seconds_since(t0);
    state.SetIterationTime(t);
    total += t;
  }
  const double flops = 2.0 * static_cast<double>(n) * n * n * static_cast<double>(state.iterations());
  g_gemm_peak = std::max(g_gemm_peak, flops / total);
  state.counters["FLOP/s"] = benchmark::Counter(flops / total, benchmark::Counter::kDefaults,
                                                benchmark::Counter::OneK::kIs1000);
}

void bm_step(benchmark::State& state, ModelConfig cfg) {
  Ops& ops = *g_backend->ops;
  nn::Model model(ops, cfg);
  nn::AdamW adamw(ops, nn::AdamWConfig::from(cfg), model.params());
  const nn::Batch batch = nn::synthetic_batch(cfg.seed, cfg.vocab, cfg.batch, cfg.seq);
  const Tensor tokens = ops.upload(batch.inputs), targets = ops.upload(batch.targets);
  auto step = [&] {
    model.zero_grad();
    model.forward(tokens, targets);  // TUTORIAL: the step being measured: forward + loss,
    model.backward();                // backward,
    adamw.step();                    // and the optimizer
    ops.synchronize();
  };
  step();  // warm-up: allocates every activation buffer once
  double total = 0.0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    step();
    const double t = seconds_since(t0);
    state.SetIterationTime(t);
    total += t;
  }
  const double tokens_per_step = static_cast<double>(cfg.batch) * cfg.seq;
  const double flops = ch01::train_flops_per_token(cfg, cfg.seq) * tokens_per_step * static_cast<double>(state.iterations());
  using benchmark::Counter;
  state.counters["tokens/s"] = Counter(tokens_per_step * static_cast<double>(state.iterations()) / total);
  state.counters["FLOP/s"] = Counter(flops / total, Counter::kDefaults, Counter::OneK::kIs1000);
  state.counters["N"] = Counter(static_cast<double>(ch01::param_count(cfg)), Counter::kDefaults,
                                Counter::OneK::kIs1000);
  if (g_gemm_peak > 0) state.counters["of_gemm_peak"] = Counter(flops / total / g_gemm_peak);
}

/// Our own flags (besides --backend), removed from argv before benchmark::Initialize sees it.
struct Flags {
  bool with_124m = false;
  int batch_124m = 8;
};

Flags take_flags(int& argc, char** argv) {
  Flags f;
  f.with_124m = bench::take_flag(argc, argv, "--with-124m");
  f.batch_124m = bench::take_int(argc, argv, "--batch-124m", f.batch_124m);
  return f;
}

ModelConfig small_config() {
  ModelConfig c;
  c.vocab = 4096;
  c.dim = 256;
  c.ffn = 768;
  c.layers = 4;
  c.heads = 8;
  c.kv_heads = 4;
  c.seq = 128;
  c.batch = 2;
  return c;
}

void register_step(const char* name, const ModelConfig& cfg, int iterations) {
  benchmark::RegisterBenchmark(name, bm_step, cfg)->Iterations(iterations)->UseManualTime()->Unit(
      benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  return bench::bench_main(argc, argv, [](int& ac, char** av, const std::string& backend_name) {
    const Flags flags = take_flags(ac, av);
    Backend backend = make_backend(backend_name);
    g_backend = &backend;
    for (const std::int64_t n : {512, 1024, 2048})  // first: the peak the steps are compared with
      benchmark::RegisterBenchmark("gemm", bm_gemm)->Arg(n)->Iterations(n <= 1024 ? 10 : 3)->UseManualTime()->Unit(
          benchmark::kMillisecond);
    register_step("step/tiny", ModelConfig(), 50);
    register_step("step/small", small_config(), 5);
    if (flags.with_124m) {
      ModelConfig big = ch01::config_124m();
      big.batch = flags.batch_124m;
      register_step(("step/124M/B" + std::to_string(big.batch)).c_str(), big, 2);
    }
    // Each rank times its own serial model (no collectives), so the order may differ by rank.
    bench::run_benchmarks(ac, av,
                          "bench_step: " + backend.description +
                              "; model FLOPs = B*T*(6*N_matmul + 12*L*T*C) per step" +
                              (flags.with_124m ? "" : " (add --with-124m for the 124M model)"),
                          bench::Ranks::independent);
    g_backend = nullptr;
  });
}
