// SPDX-License-Identifier: MIT
/// @file nn_test_util.hpp
/// @brief Small helpers of the nn tests: random tensors from the counter-based RNG, double
/// conversions, and a relative-L2 expectation that reports the measured error.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/ops.hpp"
#include "common/model_config.hpp"
#include "nn/params.hpp"
#include "common/rng.hpp"
#include "tests/nn/reference.hpp"

namespace fivefold::testing_nn {

/// The model the nn tests differentiate in double precision: V 11, C 8, H 2, Hkv 1, F 12, L 2,
/// T 5, B 2 (small enough for finite differences over every parameter).
inline ModelConfig tiny_model() {
  ModelConfig c;
  c.vocab = 11;
  c.dim = 8;
  c.heads = 2;
  c.kv_heads = 1;
  c.ffn = 12;
  c.layers = 2;
  c.seq = 5;
  c.batch = 2;
  return c;
}

/// Host fp32 tensor of @p shape with normal(mean, std) entries drawn under @p name.
inline Tensor random_tensor(const std::string& name, const Shape& shape, float std = 1.0f, float mean = 0.0f,
                            std::uint64_t seed = 7) {
  return rng::draw(seed, name, shape, rng::Dist::normal, mean, std);
}

/// Host int32 tensor of @p shape with entries in [0, n).
inline Tensor random_ints(const std::string& name, const Shape& shape, int n, std::uint64_t seed = 7) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(shape_numel(shape)));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = rng::integer(seed, name, static_cast<std::int64_t>(i), n);
  return Tensor::from_vector(v, shape);
}

/// Int vector of an int32 tensor.
inline ref::IVec to_ints(const Tensor& t) {
  const std::vector<std::int32_t> v = t.to_ivector();
  return ref::IVec(v.begin(), v.end());
}

/// fp32 host tensor from doubles.
inline Tensor from_double(const ref::Vec& v, const Shape& shape) {
  return Tensor::from_vector(std::vector<float>(v.begin(), v.end()), shape);
}

/// Redraws every parameter with larger values than the 0.02 init (so every nonlinearity is
/// exercised): weights normal(0, @p std), routers normal(0, @p router_std) (spreads the tokens
/// over the experts), norm gains normal(1, 0.1).
inline void randomize(nn::ParamRegistry& reg, float std = 0.3f, float router_std = 2.0f, std::uint64_t seed = 11) {
  for (nn::Param& p : reg.all()) {
    const bool gain = p.name.find("norm.weight") != std::string::npos;
    const float s = gain ? 0.1f : p.name.find("router") != std::string::npos ? router_std : std;
    p.value.copy_from(random_tensor("test." + p.name, p.value.shape(), s, gain ? 1.0f : 0.0f, seed));
  }
}

/// Expects rel_l2(ours, reference) <= tol and prints the measured error.
inline void expect_rel(const std::string& what, const ref::Vec& ours, const ref::Vec& reference, double tol) {
  const double e = ref::rel_l2(ours, reference);
  std::printf("  %-52s rel_l2 %.2e (tol %.0e)\n", what.c_str(), e, tol);
  EXPECT_LE(e, tol) << what << ": relative L2 error " << e << " > " << tol;
}

}  // namespace fivefold::testing_nn
