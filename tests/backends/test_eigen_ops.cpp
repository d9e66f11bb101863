// SPDX-License-Identifier: MIT
// Every method of EigenOps (the CPU backend's Ops, the reference for all other backends)
// against naive loops in double precision: matmul in all four transpose combinations with
// alpha/beta, non-square, flattened leading dimensions and zero-sized; the elementwise ops with
// y aliasing their inputs; and the errors raised on mismatched sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "backends/cpu/eigen_ops.hpp"
#include "collective_checks.hpp"

namespace fivefold::testing {
namespace {

/// A deterministic non-integer value in [-1, 1) for element i of tensor number @p seed.
float pseudo(int seed, std::int64_t i) {
  std::uint32_t x = static_cast<std::uint32_t>(seed * 2654435761u + static_cast<std::uint32_t>(i) * 40503u + 12345u);
  x ^= x >> 13;
  x *= 0x5bd1e995u;
  x ^= x >> 15;
  return static_cast<float>(x % 20000u) / 10000.0f - 1.0f;
}

Tensor filled(Shape shape, int seed) {
  Tensor t = Tensor::empty(std::move(shape));
  for (std::int64_t i = 0; i < t.numel(); ++i) t.at<float>(i) = pseudo(seed, i);
  return t;
}

class EigenOpsTest : public ::testing::Test {
 protected:
  void SetUp() override { backend_ = make_backend("cpu"); }
  Ops& ops() { return *backend_.ops; }
  Backend backend_;
};

TEST_F(EigenOpsTest, IdentifiesItself) {
  EXPECT_EQ(ops().name(), "eigen");
  EXPECT_EQ(ops().device(), Device::host);
  ops().synchronize();
  Tensor z = ops().zeros({3, 2});
  EXPECT_EQ(z.to_vector(), std::vector<float>(6, 0.0f));
  EXPECT_EQ(ops().upload(z).device(), Device::host);
}

struct MatmulCase {
  std::int64_t m, n, k;
};

TEST_F(EigenOpsTest, MatmulAllTransposesAgainstLoops) {
  const std::vector<MatmulCase> cases = {{3, 5, 4}, {1, 1, 1}, {7, 3, 1}, {1, 9, 6}, {17, 33, 65},
                                         {0, 4, 3}, {4, 0, 3}, {4, 3, 0}, {0, 0, 0}};
  const std::vector<std::pair<float, float>> scalars = {{1.0f, 0.0f}, {0.5f, -2.0f}, {-1.5f, 1.0f}};
  int seed = 1;
  for (const auto& mc : cases) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      for (const auto& [alpha, beta] : scalars) {
        const std::string what = "m" + std::to_string(mc.m) + " n" + std::to_string(mc.n) + " k" +
                                 std::to_string(mc.k) + (ta ? " A^T" : "") + (tb ? " B^T" : "") + " alpha " +
                                 std::to_string(alpha) + " beta " + std::to_string(beta);
        Tensor a = filled(ta ? Shape{mc.k, mc.m} : Shape{mc.m, mc.k}, seed++);
        Tensor b = filled(tb ? Shape{mc.n, mc.k} : Shape{mc.k, mc.n}, seed++);
        Tensor c = filled({mc.m, mc.n}, seed++);
        if (beta == 0.0f && c.numel() > 0) c.at<float>(0) = std::numeric_limits<float>::quiet_NaN();
        const Tensor c0 = c.clone();
        ops().matmul(c, a, b, ta, tb, alpha, beta);
        for (std::int64_t i = 0; i < mc.m; ++i) {
          for (std::int64_t j = 0; j < mc.n; ++j) {
            double acc = 0, mag = 0;
            for (std::int64_t p = 0; p < mc.k; ++p) {
              const double av = a.at<float>(ta ? p * mc.m + i : i * mc.k + p);
              const double bv = b.at<float>(tb ? j * mc.k + p : p * mc.n + j);
              acc += av * bv;
              mag += std::fabs(av * bv);
            }
            // beta == 0 means C is not read (BLAS convention): a NaN there must not leak.
            const double prev = beta == 0.0f ? 0.0 : beta * static_cast<double>(c0.at<float>(i * mc.n + j));
            const double want = alpha * acc + prev;
            const double tol = 1e-5 * (std::fabs(alpha) * mag + std::fabs(prev)) + 1e-7;
            EXPECT_NEAR(c.at<float>(i * mc.n + j), want, tol) << what << " at (" << i << ", " << j << ")";
          }
        }
      }
    }
  }
}

TEST_F(EigenOpsTest, MatmulFlattensLeadingDimensions) {
  // A [2, 3, 4] is the matrix [6, 4]; C [2, 3, 5] is [6, 5].
  Tensor a = filled({2, 3, 4}, 101), b = filled({4, 5}, 102);
  Tensor c = Tensor::zeros({2, 3, 5});
  ops().matmul(c, a, b, false, false);
  for (int i = 0; i < 6; ++i) {
    for (int j = 0; j < 5; ++j) {
      double want = 0;
      for (int p = 0; p < 4; ++p) want += static_cast<double>(a.at<float>(i * 4 + p)) * b.at<float>(p * 5 + j);
      EXPECT_NEAR(c.at<float>(i * 5 + j), want, 1e-5) << "(" << i << ", " << j << ")";
    }
  }
  // The weight-gradient pattern: dW [5, 4] = dY^T [5, 6] X [6, 4] with dY [2, 3, 5], X [2, 3, 4].
  Tensor dw = Tensor::zeros({5, 4});
  ops().matmul(dw, c, a, true, false);
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 4; ++j) {
      double want = 0;
      for (int p = 0; p < 6; ++p) want += static_cast<double>(c.at<float>(p * 5 + i)) * a.at<float>(p * 4 + j);
      EXPECT_NEAR(dw.at<float>(i * 4 + j), want, 1e-5) << "dW (" << i << ", " << j << ")";
    }
  }
}

TEST_F(EigenOpsTest, MatmulZeroInnerDimensionScalesC) {
  // K = 0: op(A) op(B) is an M x N zero matrix, so C = beta * C.
  Tensor a = Tensor::empty({3, 0}), b = Tensor::empty({0, 2});
  Tensor c = filled({3, 2}, 7);
  const Tensor c0 = c.clone();
  ops().matmul(c, a, b, false, false, 1.0f, 0.5f);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(c.at<float>(i), 0.5f * c0.at<float>(i)) << i;
  ops().matmul(c, a, b, false, false, 1.0f, 0.0f);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(c.at<float>(i), 0.0f) << i;
}

TEST_F(EigenOpsTest, ElementwiseAgainstLoopsWithAliasing) {
  for (std::int64_t len : kLengths) {
    const Tensor a = filled({len}, 11), b = filled({len}, 12);
    const std::string at = " len " + std::to_string(len);
    std::vector<float> sum(len), mx(len), ax(len), sc(len), twice(len);
    for (std::int64_t i = 0; i < len; ++i) {
      const float x = a.at<float>(i), y = b.at<float>(i);
      sum[i] = x + y;
      mx[i] = x > y ? x : y;
      ax[i] = y + 0.25f * x;
      sc[i] = x * -3.0f;
      twice[i] = x + x;
    }
    Tensor y = Tensor::empty({len});
    ops().add(y, a, b);
    expect_equal(y, sum, "add" + at);
    Tensor ya = a.clone();
    ops().add(ya, ya, b);  // y aliases a
    expect_equal(ya, sum, "add, y == a" + at);
    Tensor yb = b.clone();
    ops().add(yb, a, yb);  // y aliases b
    expect_equal(yb, sum, "add, y == b" + at);
    Tensor yy = a.clone();
    ops().add(yy, yy, yy);  // y == a == b
    expect_equal(yy, twice, "add, y == a == b" + at);

    Tensor m = Tensor::empty({len});
    ops().maximum(m, a, b);
    expect_equal(m, mx, "maximum" + at);
    Tensor ma = a.clone();
    ops().maximum(ma, ma, b);
    expect_equal(ma, mx, "maximum, y == a" + at);

    Tensor p = b.clone();
    ops().axpy(p, 0.25f, a);
    expect_equal(p, ax, "axpy" + at);
    Tensor q = a.clone();
    ops().axpy(q, 1.0f, q);  // y aliases x
    expect_equal(q, twice, "axpy, y == x" + at);

    Tensor s = a.clone();
    ops().scale(s, -3.0f);
    expect_equal(s, sc, "scale" + at);
    Tensor f = Tensor::empty({len});
    ops().fill(f, 2.5f);
    expect_equal(f, std::vector<float>(len, 2.5f), "fill" + at);
  }
}

TEST_F(EigenOpsTest, ElementwiseIgnoresShapeButNotSize) {
  // Elementwise ops compare element counts only: [2, 3] + [6] is fine.
  Tensor y = Tensor::empty({6});
  ops().add(y, filled({2, 3}, 1), filled({6}, 2));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(y.at<float>(i), pseudo(1, i) + pseudo(2, i));
}

TEST_F(EigenOpsTest, ErrorsOnSizeMismatch) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({7}), y = Tensor::zeros({6});
  expect_error([&] { ops().add(y, a, b); }, {"add", a.str(), b.str()});
  expect_error([&] { ops().add(b, a, a); }, {"add", b.str(), a.str()});
  expect_error([&] { ops().maximum(y, a, b); }, {"maximum", b.str()});
  expect_error([&] { ops().axpy(b, 1.0f, a); }, {"axpy", a.str(), b.str()});
  Tensor ia = Tensor::zeros({6}, DType::i32);
  expect_error([&] { ops().scale(ia, 2.0f); }, {"scale", ia.str()});
  expect_error([&] { ops().fill(ia, 2.0f); }, {"fill", ia.str()});
  expect_error([&] { ops().add(y, ia, y); }, {"add", ia.str()});

  Tensor ma = Tensor::zeros({3, 4}), mb = Tensor::zeros({5, 6}), mc = Tensor::zeros({3, 6});
  expect_error([&] { ops().matmul(mc, ma, mb, false, false); }, {"matmul", ma.str(), mb.str(), mc.str()});
  Tensor mb2 = Tensor::zeros({4, 6}), wrong_c = Tensor::zeros({6, 3});
  expect_error([&] { ops().matmul(wrong_c, ma, mb2, false, false); }, {"matmul", wrong_c.str()});
  expect_error([&] { ops().matmul(mc, ma, mb2, true, false); }, {"matmul", "^T"});
  Tensor sq = Tensor::zeros({4, 4});
  expect_error([&] { ops().matmul(sq, sq, sq, false, false); }, {"matmul", "share memory"});
}

}  // namespace
}  // namespace fivefold::testing
