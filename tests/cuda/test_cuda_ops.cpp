// SPDX-License-Identifier: MIT
// Every CudaOps method against the Eigen reference on the same inputs (like ggml's backend ops
// test): elementwise ops within 1e-6 relative L2 error (the kernels round like the CPU, so they
// are usually bitwise equal), matmul within 1e-5, in every transpose combination.
#include <cmath>
#include <limits>

#include "cuda_test_support.hpp"

namespace fivefold::test {
namespace {

constexpr double kElementwiseTol = 1e-6;
constexpr double kMatmulTol = 1e-5;

class CudaOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FIVEFOLD_REQUIRE_GPU();
    std::string why;
    backend_ = cuda_backend(CudaTransport::staged, &why);  // any transport: ops do not communicate
    ASSERT_NE(backend_, nullptr) << why;
  }
  Ops& gpu() { return *backend_->ops; }
  Ops& cpu() { return reference_ops(); }
  static Tensor host(std::uint32_t seed, const Shape& s) {
    return Tensor::from_vector(random_values(static_cast<std::size_t>(shape_numel(s)), seed), s);
  }
  // The device result equals the host reference within @p tol (relative L2).
  static void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
    ASSERT_EQ(got.device(), Device::cuda) << what;
    ASSERT_EQ(got.shape(), want.shape()) << what;
    EXPECT_LE(rel_l2(got.to_vector(), want.to_vector()), tol) << what;
  }

  Backend* backend_ = nullptr;
};

TEST_F(CudaOpsTest, Fill) {
  Tensor want = Tensor::empty({5, 33});
  cpu().fill(want, 3.25f);
  Tensor got = gpu().empty({5, 33});
  gpu().fill(got, 3.25f);
  expect_close(got, want, 0.0, "fill");
}

TEST_F(CudaOpsTest, AddAndAliasing) {
  const Shape s{3, 257};
  Tensor a = host(1, s), b = host(2, s);
  Tensor want = Tensor::empty(s);
  cpu().add(want, a, b);
  Tensor ga = gpu().upload(a), gb = gpu().upload(b), gy = gpu().empty(s);
  gpu().add(gy, ga, gb);
  expect_close(gy, want, kElementwiseTol, "add");
  gpu().add(ga, ga, gb);  // y aliases a
  expect_close(ga, want, kElementwiseTol, "add in place");
}

TEST_F(CudaOpsTest, MaximumAndAliasing) {
  const Shape s{1000};
  Tensor a = host(3, s), b = host(4, s);
  for (int i = 0; i < 10; ++i) b.at<float>(i) = a.at<float>(i);  // ties
  Tensor want = Tensor::empty(s);
  cpu().maximum(want, a, b);
  Tensor ga = gpu().upload(a), gb = gpu().upload(b), gy = gpu().empty(s);
  gpu().maximum(gy, ga, gb);
  expect_close(gy, want, kElementwiseTol, "maximum");
  gpu().maximum(gb, ga, gb);  // y aliases b
  expect_close(gb, want, kElementwiseTol, "maximum in place");
}

TEST_F(CudaOpsTest, Axpy) {
  const Shape s{17, 31};
  Tensor x = host(5, s), y = host(6, s);
  Tensor gx = gpu().upload(x), gy = gpu().upload(y);
  cpu().axpy(y, -0.37f, x);
  gpu().axpy(gy, -0.37f, gx);
  expect_close(gy, y, kElementwiseTol, "axpy");
}

TEST_F(CudaOpsTest, ScaleBeyondOneGrid) {
  // More elements than one capped grid covers (65535 blocks x 256 threads): the grid-stride
  // loop must reach the tail.
  const Shape s{(std::int64_t{1} << 24) + 77};
  Tensor x = host(7, s);
  Tensor gx = gpu().upload(x);
  cpu().scale(x, 1.7f);
  gpu().scale(gx, 1.7f);
  expect_close(gx, x, kElementwiseTol, "scale");
  EXPECT_EQ(gx.flat(s[0] - 1, 1).to_vector()[0], x.at<float>(s[0] - 1)) << "last element";
}

TEST_F(CudaOpsTest, EmptyTensorsAreFine) {
  Tensor e = gpu().empty({0});
  gpu().fill(e, 1.0f);
  gpu().add(e, e, e);
  gpu().scale(e, 2.0f);
  gpu().synchronize();
  EXPECT_EQ(e.numel(), 0);
}

TEST_F(CudaOpsTest, RejectsHostTensorsAndSizeMismatch) {
  Tensor h = host(8, {4});
  Tensor d = gpu().upload(h);
  EXPECT_THROW(gpu().add(d, d, h), Error);
  Tensor d5 = gpu().empty({5});
  EXPECT_THROW(gpu().add(d, d, d5), Error);
  EXPECT_THROW(gpu().axpy(d5, 1.0f, d), Error);
}

// (transpose_a, transpose_b)
class CudaMatmulTest : public CudaOpsTest, public ::testing::WithParamInterface<std::tuple<bool, bool>> {};

TEST_P(CudaMatmulTest, MatchesEigenWithAlphaBeta) {
  const auto [ta, tb] = GetParam();
  const std::int64_t m = 37, k = 53, n = 29;
  Tensor a = host(10, ta ? Shape{k, m} : Shape{m, k});
  Tensor b = host(11, tb ? Shape{n, k} : Shape{k, n});
  Tensor c = host(12, {m, n});
  Tensor gc = gpu().upload(c);
  cpu().matmul(c, a, b, ta, tb, 0.7f, 0.3f);
  gpu().matmul(gc, gpu().upload(a), gpu().upload(b), ta, tb, 0.7f, 0.3f);
  expect_close(gc, c, kMatmulTol, std::string("matmul ta=") + (ta ? "1" : "0") + " tb=" + (tb ? "1" : "0"));
}

TEST_P(CudaMatmulTest, LargerSquareishShapes) {
  const auto [ta, tb] = GetParam();
  const std::int64_t m = 256, k = 384, n = 192;
  Tensor a = host(13, ta ? Shape{k, m} : Shape{m, k});
  Tensor b = host(14, tb ? Shape{n, k} : Shape{k, n});
  Tensor c = Tensor::empty({m, n});
  Tensor gc = gpu().empty({m, n});
  cpu().matmul(c, a, b, ta, tb, 1.0f, 0.0f);
  gpu().matmul(gc, gpu().upload(a), gpu().upload(b), ta, tb, 1.0f, 0.0f);
  expect_close(gc, c, kMatmulTol, "large matmul");
}

INSTANTIATE_TEST_SUITE_P(Transposes, CudaMatmulTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "AT" : "A") +
                                  (std::get<1>(info.param) ? "_BT" : "_B");
                         });

TEST_F(CudaOpsTest, MatmulFlattensLeadingDimensions) {
  // x [B, T, C] @ W^T with W [F, C] (a Linear layer) and its weight gradient x^T dy.
  Tensor x = host(15, {2, 5, 64}), w = host(16, {48, 64}), y = Tensor::empty({2, 5, 48});
  Tensor gy = gpu().empty({2, 5, 48});
  cpu().matmul(y, x, w, false, true, 1.0f, 0.0f);
  gpu().matmul(gy, gpu().upload(x), gpu().upload(w), false, true, 1.0f, 0.0f);
  expect_close(gy, y, kMatmulTol, "x W^T");
  Tensor dw = Tensor::empty({64, 48}), gdw = gpu().empty({64, 48});
  cpu().matmul(dw, x, y, true, false, 1.0f, 0.0f);
  gpu().matmul(gdw, gpu().upload(x), gpu().upload(y), true, false, 1.0f, 0.0f);
  expect_close(gdw, dw, kMatmulTol, "x^T y");
}

TEST_F(CudaOpsTest, MatmulBetaZeroIgnoresOldC) {
  Tensor a = host(17, {8, 8}), b = host(18, {8, 8}), c = Tensor::empty({8, 8});
  Tensor gc = gpu().empty({8, 8});
  gpu().fill(gc, std::numeric_limits<float>::quiet_NaN());
  cpu().matmul(c, a, b, false, false, 2.0f, 0.0f);
  gpu().matmul(gc, gpu().upload(a), gpu().upload(b), false, false, 2.0f, 0.0f);
  expect_close(gc, c, kMatmulTol, "beta = 0 over NaN");
}

TEST_F(CudaOpsTest, MatmulRejectsBadShapes) {
  Tensor a = gpu().empty({4, 5}), b = gpu().empty({6, 3}), c = gpu().empty({4, 3});
  EXPECT_THROW(gpu().matmul(c, a, b, false, false, 1.0f, 0.0f), Error);  // K 5 vs 6
  Tensor b2 = gpu().empty({5, 3}), c2 = gpu().empty({3, 4});
  EXPECT_THROW(gpu().matmul(c2, a, b2, false, false, 1.0f, 0.0f), Error);  // C is [4, 3]
}

}  // namespace
}  // namespace fivefold::test
