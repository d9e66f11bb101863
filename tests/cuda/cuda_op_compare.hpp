// SPDX-License-Identifier: MIT
/// @file cuda_op_compare.hpp
/// @brief The fixture of the model-op tests: the same host inputs through EigenOps and CudaOps,
/// and comparisons that print the measured error next to the tolerance.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cuda_test_support.hpp"

namespace fivefold::test {

/// Relative L2 tolerance of one op (docs/reference.md, "Tolerances"): the kernels differ from the
/// CPU only in the
/// order of a row's or a GEMM's sums (fp32 rounding ~1e-7 relative).
inline constexpr double kOpTol = 1e-5;
/// Elementwise ops round every product and sum like the CPU: equal up to an ulp of expf.
inline constexpr double kElemTol = 1e-6;

/// CudaOps vs EigenOps on the same inputs; skips without a GPU.
class CudaModelOpsTest : public ::testing::Test {
 public:
  void SetUp() override {
    FIVEFOLD_REQUIRE_GPU();
    std::string why;
    backend_ = cuda_backend(CudaTransport::staged, &why);  // ops do not communicate
    ASSERT_NE(backend_, nullptr) << why;
  }
  Ops& gpu() { return *backend_->ops; }
  static Ops& cpu() { return reference_ops(); }
  /// Host fp32 tensor with values in [-scale, scale) drawn from @p seed.
  static Tensor host(std::uint32_t seed, const Shape& s, float scale = 1.0f) {
    std::vector<float> v = random_values(static_cast<std::size_t>(shape_numel(s)), seed);
    for (float& x : v) x *= scale;
    return Tensor::from_vector(v, s);
  }
  /// Host int32 tensor.
  static Tensor ints(const std::vector<std::int32_t>& v, const Shape& s) { return Tensor::from_vector(v, s); }
  /// A device copy.
  Tensor up(const Tensor& t) { return gpu().upload(t); }

  /// rel_l2(got, want) <= tol, printing the measured error.
  static void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
    ASSERT_EQ(got.shape(), want.shape()) << what;
    const double e = rel_l2(got.to_vector(), want.to_vector());
    std::printf("  %-56s rel_l2 %.2e (tol %.0e)\n", what.c_str(), e, tol);
    EXPECT_LE(e, tol) << what;
  }

  /// Like expect_close for values that may be -inf (lse): the -inf entries must coincide and
  /// the finite ones agree within @p tol.
  static void expect_close_inf(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
    ASSERT_EQ(got.shape(), want.shape()) << what;
    const std::vector<float> g = got.to_vector(), w = want.to_vector();
    std::vector<float> gf, wf;
    int mismatched = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      const bool gi = std::isinf(g[i]), wi = std::isinf(w[i]);
      if (gi || wi) {
        if (g[i] != w[i]) ++mismatched;
        continue;
      }
      gf.push_back(g[i]);
      wf.push_back(w[i]);
    }
    EXPECT_EQ(mismatched, 0) << what << ": -inf entries differ";
    expect_close(Tensor::from_vector(gf, {static_cast<std::int64_t>(gf.size())}),
                 Tensor::from_vector(wf, {static_cast<std::int64_t>(wf.size())}), tol, what);
  }

  /// Bitwise equality of two device results (determinism run to run).
  static void expect_same_bits(const Tensor& a, const Tensor& b, const std::string& what) {
    const std::vector<float> x = a.to_vector(), y = b.to_vector();
    ASSERT_EQ(x.size(), y.size()) << what;
    int differ = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (std::memcmp(&x[i], &y[i], sizeof(float)) != 0) ++differ;
    EXPECT_EQ(differ, 0) << what << ": " << differ << " elements differ between two identical runs";
  }

  Backend* backend_ = nullptr;
};

}  // namespace fivefold::test
