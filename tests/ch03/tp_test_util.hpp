// SPDX-License-Identifier: MIT
/// @file tp_test_util.hpp
/// @brief Shared pieces of the chapter 03 tests: the CPU backend (built once per process), a
/// model whose sizes every world size divides, random inputs, and relative-error helpers.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "backends/backend.hpp"
#include "chapters/03_tensor_parallel/tp_gather.hpp"
#include "common/model_config.hpp"
#include "common/rng.hpp"
#include "common/summary.hpp"

namespace fivefold::test {

/// Base fixture: the CPU backend over MPI_COMM_WORLD, built per test (before MPI_Finalize).
class TpTest : public ::testing::Test {
 protected:
  void SetUp() override { backend_ = make_backend("cpu"); }
  /// The compute ops.
  Ops& ops() { return *backend_.ops; }
  /// Every rank.
  Communicator& world() { return *backend_.world; }
  Backend backend_;  ///< built in SetUp
};

/// A small model that tp = @p n divides: H = 2n query heads over @p kv_per_rank * n kv heads
/// (GQA when kv_per_rank = 1 and n*2 > n), hd 8, F = 24n, V = 16n, B 2, T 8, L 2.
inline ModelConfig small_config(int n, int heads_per_rank = 2, int kv_per_rank = 1) {
  ModelConfig c;
  c.heads = heads_per_rank * n;
  c.kv_heads = kv_per_rank * n;
  c.dim = 8 * c.heads;
  c.ffn = 24 * n;
  c.vocab = 16 * n;
  c.batch = 2;
  c.seq = 8;
  c.layers = 2;
  c.steps = 3;
  c.seed = 7;
  return c;
}

/// Deterministic normal(0, 1) host values of @p shape (the same on every rank).
inline Tensor randn(const std::string& name, const Shape& shape) {
  return rng::draw(99, "test.ch03." + name, shape, rng::Dist::normal, 0.0f, 1.0f);
}

/// Relative L2 error of @p ours vs @p ref.
inline double rel(const Tensor& ours, const Tensor& ref) { return compare("", ours, ref, 0).max_rel_err; }

/// Relative L2 error of this rank's shard vs its block of the full @p ref.
inline double rel_shard(const Tensor& shard, const Tensor& ref, ch03::Split s, const Communicator& tp) {
  return rel(shard, ch03::block_of(ref, s, tp.rank(), tp.size()));
}

/// The counted all_reduce calls and bytes of @p c.
inline OpCount counted(const Communicator& c, const std::string& op = "all_reduce") {
  const auto it = c.counts().find(op);
  return it == c.counts().end() ? OpCount{} : it->second;
}

}  // namespace fivefold::test
