// SPDX-License-Identifier: MIT
/// @file steps.hpp
/// @brief Chapter 00's options and steps (each step is one short file, step<k>_*.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "chapters/harness.hpp"

namespace fivefold::ch00 {

/// The chapter's own options.
struct Options {
  std::int64_t count = 1 << 18;  ///< --count: fp32 elements per buffer (1 MiB)
  int iters = 5;                 ///< --iters: timing repetitions per size in step 4
  std::int64_t seed = 1234;      ///< --seed: for the random buffers
};

/// Step 1: send/recv and the ring (neighbour exchange, a token around the ring).
void step1_ring(Context& ctx, const Options& o);
/// Step 2: the ring all-reduce by hand = reduce-scatter + all-gather, vs the library.
void step2_all_reduce(Context& ctx, const Options& o);
/// Step 3: all-gather, reduce-scatter, broadcast and all-to-all by hand, vs the library.
void step3_collectives(Context& ctx, const Options& o);
/// Step 4: the cost model: counted bytes vs the exact formula, timings, algbw and busbw.
void step4_cost_model(Context& ctx, const Options& o);

/// A small host-readable rendering of @p t with '|' between the ring chunks of @p n ranks:
/// "[1 10 | 100 | 1000]" (used to narrate small buffers).
std::string show_chunks(const Tensor& t, int n);
/// The name of a per-rank random tensor: "<base>.rank<r>".
std::string rank_name(const std::string& base, int rank);

}  // namespace fivefold::ch00
