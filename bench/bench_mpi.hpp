// SPDX-License-Identifier: MIT
// The MPI + Google Benchmark scaffolding every bench_*.cpp shares: take --backend (or
// $FIVEFOLD_BACKEND) and the bench's own options out of argv, refuse unknown options and flags
// that would make ranks disagree, time one call as the max over ranks, and run the registered
// benchmarks on every rank with only rank 0 reporting (and writing --benchmark_out). main()
// wraps its body in bench_main().
#pragma once

#include <benchmark/benchmark.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "backends/runtime.hpp"
#include "common/check.hpp"
#include "common/model_config.hpp"

namespace fivefold::bench {

/// Reports nothing (ranks other than 0).
class NullReporter : public benchmark::BenchmarkReporter {
 public:
  /// Accepts the context silently.
  bool ReportContext(const Context&) override { return true; }
  /// Drops the runs.
  void ReportRuns(const std::vector<Run>&) override {}
};

/// Removes "--name X" / "--name=X" from argv (every occurrence; the last wins) and returns X,
/// or nothing when absent.
inline std::optional<std::string> take_value(int& argc, char** argv, const char* name) {
  std::optional<std::string> value;
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

/// Removes every "--name" from argv; true when there was one (a switch without a value).
inline bool take_flag(int& argc, char** argv, const char* name) {
  bool found = false;
  int w = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) {
      found = true;
    } else {
      argv[w++] = argv[i];
    }
  }
  argc = w;
  return found;
}

/// take_value(), or @p fallback when absent.
inline std::string take_option(int& argc, char** argv, const char* name, const std::string& fallback) {
  return take_value(argc, argv, name).value_or(fallback);
}

/// take_value() as a finite number (or @p fallback when absent): throws UsageError naming the
/// option and the value for an empty value, trailing characters ("4x"), inf or nan.
inline double take_number(int& argc, char** argv, const char* name, double fallback) {
  const std::optional<std::string> v = take_value(argc, argv, name);
  if (!v) return fallback;
  char* end = nullptr;
  const double x = std::strtod(v->c_str(), &end);
  FIVEFOLD_USAGE_CHECK(!v->empty() && *end == '\0' && std::isfinite(x), name, " '", *v,
                       "' is not a number; e.g. ", name, "=4");
  return x;
}

/// take_number() for a count: throws UsageError unless it is a whole number in [@p min, 1e9].
inline int take_int(int& argc, char** argv, const char* name, int fallback, int min = 1) {
  const double x = take_number(argc, argv, name, fallback);
  FIVEFOLD_USAGE_CHECK(x >= min && x <= 1e9 && x == std::floor(x), name, " ", x, " must be a whole number >= ", min);
  return static_cast<int>(x);
}

/// The training benches' default model with @p layers layers: a little larger than the chapters'
/// defaults (C 128, F 256, T 64, B 16), so that a step is mostly compute.
inline ModelConfig bench_model(int layers) {
  ModelConfig d;
  d.layers = layers;
  d.dim = 128;
  d.ffn = 256;
  d.seq = 64;
  d.batch = 16;
  return d;
}

/// A model wider than the chapters' default (H 8, Hkv 4, C 256, F 1024, V 512, L 4, B 16) with
/// sequences of @p seq, so that a step is mostly compute and tp can reach 8: bench_dp_tp's and
/// bench_hybrid's default.
inline ModelConfig wide_model(int seq) {
  ModelConfig d;
  d.heads = 8;
  d.kv_heads = 4;
  d.dim = 256;
  d.ffn = 1024;
  d.vocab = 512;
  d.layers = 4;
  d.seq = seq;
  d.batch = 16;
  return d;
}

/// The model options a training bench accepts (--vocab --dim --heads --kv-heads --ffn --layers
/// --seq --batch), each defaulting to @p defaults' value, then validated (UsageError naming the
/// problem, as the chapters do).
inline ModelConfig take_model(int& argc, char** argv, ModelConfig defaults) {
  ModelConfig c = defaults;
  c.vocab = take_int(argc, argv, "--vocab", c.vocab);
  c.dim = take_int(argc, argv, "--dim", c.dim);
  c.heads = take_int(argc, argv, "--heads", c.heads);
  c.kv_heads = take_int(argc, argv, "--kv-heads", c.kv_heads);
  c.ffn = take_int(argc, argv, "--ffn", c.ffn);
  c.layers = take_int(argc, argv, "--layers", c.layers);
  c.seq = take_int(argc, argv, "--seq", c.seq);
  c.batch = take_int(argc, argv, "--batch", c.batch);
  c.validate();
  return c;
}

/// Removes "--backend X" / "--backend=X" from argv and returns X (default: $FIVEFOLD_BACKEND or cpu).
inline std::string take_backend(int& argc, char** argv) {
  const char* env = std::getenv("FIVEFOLD_BACKEND");
  return take_option(argc, argv, "--backend", env && *env ? env : "cpu");
}

/// On ranks other than 0, drops --benchmark_out* so that only rank 0 writes the file.
inline void drop_output_flags(int& argc, char** argv) {
  int w = 1;
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--benchmark_out", 15) != 0) argv[w++] = argv[i];
  argc = w;
}

/// Throws a UsageError for --benchmark_enable_random_interleaving: each rank would shuffle
/// differently and the collectives of different benchmarks would meet (deadlock or garbage).
inline void refuse_random_interleaving(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    FIVEFOLD_USAGE_CHECK(std::strncmp(argv[i], "--benchmark_enable_random_interleaving", 38) != 0,
                         argv[i], ": ranks must run the benchmarks in the same order; drop this flag "
                         "(use --benchmark_repetitions and compare medians)");
}

/// Seconds one call of @p fn takes on the slowest rank: all ranks start together (an uncounted
/// MPI_Barrier, not through the Communicator) and the per-rank times are max-reduced, since a
/// collective or a parallel step ends when its slowest rank ends. @p fn must synchronize the
/// device itself.
template <class Fn>
double time_max_over_ranks(Fn&& fn) {
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = MPI_Wtime();
  fn();
  double t = MPI_Wtime() - t0;
  MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return t;
}

/// @p x reduced over every rank with @p op (MPI_SUM, MPI_MAX, ...): the bench's bookkeeping,
/// outside every counted communicator.
inline double reduce_over_ranks(double x, MPI_Op op) {
  MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, op, MPI_COMM_WORLD);
  return x;
}

/// The middle value of @p v (the mean of the two middle ones for an even count; 0 when empty).
inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Whether the ranks' benchmarks talk to each other (then they must run in the same order).
enum class Ranks { communicate, independent };

/// Runs the registered benchmarks on every rank (their fixed iteration counts keep the ranks in
/// step): rank 0 prints @p banner and reports, the others report nothing and write no
/// --benchmark_out file. With Ranks::communicate, random interleaving is refused first.
inline void run_benchmarks(int& argc, char** argv, const std::string& banner,
                           Ranks ranks = Ranks::communicate) {
  if (ranks == Ranks::communicate) refuse_random_interleaving(argc, argv);
  const int rank = MpiSession::world_rank();
  if (rank != 0) drop_output_flags(argc, argv);
  benchmark::Initialize(&argc, argv);  // takes the --benchmark_* flags it knows
  FIVEFOLD_USAGE_CHECK(argc <= 1, "unknown option ", argc > 1 ? argv[1] : "",
                       "; the bench's own options are listed in its file comment, plus Google Benchmark's "
                       "--benchmark_* flags (--help lists those)");
  if (rank == 0) {
    std::printf("%s\n", banner.c_str());
    benchmark::RunSpecifiedBenchmarks();
  } else {
    NullReporter quiet;
    benchmark::RunSpecifiedBenchmarks(&quiet);
  }
  benchmark::Shutdown();
}

/// A bench's main: initialises MPI, takes the backend name out of argv and calls
/// @p body(argc, argv, backend_name); a UsageError prints `error: ...` on rank 0 and exits 2
/// (run_mpi_main; docs/reference.md, "Command line").
template <class Body>
int bench_main(int argc, char** argv, Body body) {
  return run_mpi_main(argc, argv, [&body](int ac, char** av) {
    const std::string backend_name = take_backend(ac, av);
    body(ac, av, backend_name);
    return 0;
  });
}

}  // namespace fivefold::bench
