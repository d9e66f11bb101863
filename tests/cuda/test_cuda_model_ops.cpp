// SPDX-License-Identifier: MIT
// The model ops except attention, CudaOps against EigenOps on the same random inputs: odd
// sizes, rows longer than one block (256 threads), repeated indices, aliasing where the
// interface allows it, and bitwise determinism of every reduction and scatter-add.
// Tolerances (relative L2): 1e-6 for elementwise ops (rounded like the CPU), 1e-5 for ops with
// a row sum (only the order of that sum differs), 1e-12 for the double sum of squares.
#include <cstring>

#include "cuda_op_compare.hpp"

namespace fivefold::test {
namespace {

using ModelOps = CudaModelOpsTest;

TEST_F(ModelOps, MulAndAliasing) {
  const Shape s{5, 301};
  Tensor a = host(1, s), b = host(2, s), want = Tensor::empty(s);
  cpu().mul(want, a, b);
  Tensor ga = up(a), gb = up(b), gy = gpu().empty(s);
  gpu().mul(gy, ga, gb);
  expect_close(gy, want, kElemTol, "mul");
  gpu().mul(gb, ga, gb);
  expect_close(gb, want, kElemTol, "mul in place");
}

TEST_F(ModelOps, SumSquaresInDoubleAndDeterministic) {
  for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{1000}, (std::int64_t{1} << 20) + 3}) {
    Tensor x = host(3, {n}, 3.0f);
    const double want = cpu().sum_squares(x);
    Tensor gx = up(x);
    const double got = gpu().sum_squares(gx), again = gpu().sum_squares(gx);
    EXPECT_NEAR(got, want, 1e-12 * want) << "n = " << n;
    EXPECT_EQ(std::memcmp(&got, &again, sizeof(double)), 0) << "sum_squares not deterministic, n = " << n;
  }
}

TEST_F(ModelOps, RowDot) {
  for (const Shape& s : {Shape{7, 33}, Shape{2, 3, 300}, Shape{64, 1}}) {
    Tensor a = host(4, s), b = host(5, s);
    Tensor want = Tensor::empty({a.numel() / s.back()});
    cpu().row_dot(want, a, b);
    Tensor got = gpu().empty(want.shape());
    gpu().row_dot(got, up(a), up(b));
    expect_close(got, want, kOpTol, "row_dot " + shape_str(s));
  }
}

TEST_F(ModelOps, GatherRowsWithAndWithoutWeights) {
  const std::int64_t R = 11, C = 37, N = 29;
  Tensor src = host(6, {R, C}), w = host(7, {N});
  std::vector<std::int32_t> idx(N);
  for (std::int64_t i = 0; i < N; ++i) idx[i] = static_cast<std::int32_t>((i * 7 + 3) % R);  // repeats
  Tensor index = ints(idx, {N}), gindex = up(index), gsrc = up(src);
  Tensor want = Tensor::empty({N, C}), got = gpu().empty({N, C});
  cpu().gather_rows(want, src, index, Tensor());
  gpu().gather_rows(got, gsrc, gindex, Tensor());
  expect_close(got, want, kElemTol, "gather_rows");
  cpu().gather_rows(want, src, index, w);
  gpu().gather_rows(got, gsrc, gindex, up(w));
  expect_close(got, want, kElemTol, "gather_rows weighted");
}

// dst [R, C] accumulates; many repeats of few rows, and many rows (more than the partitions).
TEST_F(ModelOps, ScatterAddRowsIsExactAndDeterministic) {
  struct Case { std::int64_t R, C, N; };
  for (const Case& k : {Case{7, 33, 500}, Case{1000, 48, 64}, Case{64, 300, 257}, Case{5000, 13, 3000}}) {
    Tensor dst = host(8, {k.R, k.C}), src = host(9, {k.N, k.C}), w = host(10, {k.N});
    std::vector<std::int32_t> idx(k.N);
    for (std::int64_t i = 0; i < k.N; ++i) idx[i] = static_cast<std::int32_t>((i * 13 + i / 3) % k.R);
    Tensor index = ints(idx, {k.N}), gindex = up(index), gsrc = up(src), gw = up(w);
    for (bool weighted : {false, true}) {
      Tensor want = dst.clone(), got = up(dst), again = up(dst);
      cpu().scatter_add_rows(want, src, index, weighted ? w : Tensor());
      gpu().scatter_add_rows(got, gsrc, gindex, weighted ? gw : Tensor());
      gpu().scatter_add_rows(again, gsrc, gindex, weighted ? gw : Tensor());
      const std::string what = "scatter_add_rows R=" + std::to_string(k.R) + " N=" + std::to_string(k.N) +
                               (weighted ? " weighted" : "");
      expect_close(got, want, kElemTol, what);
      expect_same_bits(got, again, what);
    }
  }
}

TEST_F(ModelOps, RmsNormForwardBackward) {
  for (const Shape& s : {Shape{2, 5, 32}, Shape{3, 7, 300}, Shape{1000, 17}, Shape{1, 1, 1}}) {
    const std::int64_t C = s.back(), N = shape_numel(s) / C;
    Tensor x = host(11, s, 2.0f), w = host(12, {C}), dy = host(13, s), dw0 = host(14, {C});
    Tensor y = Tensor::empty(s), rstd = Tensor::empty({N}), dx = Tensor::empty(s), dw = dw0.clone();
    cpu().rmsnorm_forward(y, rstd, x, w, 1e-5f);
    cpu().rmsnorm_backward(dx, dw, dy, x, w, rstd);
    Tensor gx = up(x), gw = up(w), gdy = up(dy);
    Tensor gy = gpu().empty(s), grstd = gpu().empty({N}), gdx = gpu().empty(s), gdw = up(dw0), gdw2 = up(dw0);
    gpu().rmsnorm_forward(gy, grstd, gx, gw, 1e-5f);
    gpu().rmsnorm_backward(gdx, gdw, gdy, gx, gw, grstd);
    const std::string tag = " " + shape_str(s);
    expect_close(gy, y, kOpTol, "rmsnorm y" + tag);
    expect_close(grstd, rstd, kOpTol, "rmsnorm rstd" + tag);
    expect_close(gdx, dx, kOpTol, "rmsnorm dx" + tag);
    expect_close(gdw, dw, kOpTol, "rmsnorm dw (accumulated)" + tag);
    gpu().rmsnorm_backward(gdx, gdw2, gdy, gx, gw, grstd);
    expect_same_bits(gdw, gdw2, "rmsnorm dw" + tag);
  }
}

TEST_F(ModelOps, RopeForwardInverseAtLargePositions) {
  const Shape s{2, 7, 3, 16};
  for (std::int32_t start : {0, 100, 40000}) {
    std::vector<std::int32_t> p(7);
    for (int t = 0; t < 7; ++t) p[t] = start + 3 * t;  // a chunk's own, non-contiguous positions
    Tensor pos = ints(p, {7}), gpos = up(pos), x = host(15, s);
    for (bool inverse : {false, true}) {
      Tensor want = x.clone(), got = up(x);
      cpu().rope(want, pos, 10000.0f, inverse);
      gpu().rope(got, gpos, 10000.0f, inverse);
      expect_close(got, want, kElemTol,
                   "rope start " + std::to_string(start) + (inverse ? " inverse" : " forward"));
    }
  }
  Tensor x = host(16, {1, 5, 2, 64}), gx = up(x);  // forward then inverse is the identity
  Tensor pos = ints({0, 1, 2, 3, 4}, {5}), gpos = up(pos);
  gpu().rope(gx, gpos, 10000.0f, false);
  gpu().rope(gx, gpos, 10000.0f, true);
  expect_close(gx, x, kElemTol, "rope round trip");
}

TEST_F(ModelOps, SwiGluForwardBackward) {
  const Shape s{3, 1001};
  Tensor g = host(17, s, 12.0f), u = host(18, s, 2.0f), dh = host(19, s);
  Tensor h = Tensor::empty(s), dg = Tensor::empty(s), du = Tensor::empty(s);
  cpu().swiglu_forward(h, g, u);
  cpu().swiglu_backward(dg, du, dh, g, u);
  Tensor gg = up(g), gu = up(u), gh = gpu().empty(s), gdg = gpu().empty(s), gdu = gpu().empty(s);
  gpu().swiglu_forward(gh, gg, gu);
  gpu().swiglu_backward(gdg, gdu, up(dh), gg, gu);
  expect_close(gh, h, kElemTol, "swiglu h");
  expect_close(gdg, dg, kElemTol, "swiglu dg");
  expect_close(gdu, du, kElemTol, "swiglu du");
}

TEST_F(ModelOps, SoftmaxRowsAndAliasing) {
  for (const Shape& s : {Shape{13, 8}, Shape{5, 1000}, Shape{3, 1}}) {
    Tensor x = host(20, s, 8.0f), want = Tensor::empty(s);
    cpu().softmax_rows(want, x);
    Tensor gx = up(x), gy = gpu().empty(s);
    gpu().softmax_rows(gy, gx);
    expect_close(gy, want, kOpTol, "softmax_rows " + shape_str(s));
    gpu().softmax_rows(gx, gx);
    expect_close(gx, want, kOpTol, "softmax_rows in place " + shape_str(s));
  }
}

TEST_F(ModelOps, CrossEntropyAndInPlaceGradient) {
  for (const Shape& s : {Shape{9, 50}, Shape{4, 1000}, Shape{2, 3, 37}}) {
    const std::int64_t V = s.back(), N = shape_numel(s) / V;
    Tensor x = host(21, s, 6.0f);
    std::vector<std::int32_t> t(N);
    for (std::int64_t i = 0; i < N; ++i) t[i] = static_cast<std::int32_t>((i * 17 + 5) % V);
    Tensor tg = ints(t, {N}), loss = Tensor::empty({N}), d = Tensor::empty(s);
    const float scale = 1.0f / static_cast<float>(N);
    cpu().cross_entropy(loss, d, x, tg, scale);
    Tensor gx = up(x), gtg = up(tg), gloss = gpu().empty({N}), gd = gpu().empty(s);
    gpu().cross_entropy(gloss, gd, gx, gtg, scale);
    expect_close(gloss, loss, kOpTol, "cross_entropy loss " + shape_str(s));
    expect_close(gd, d, kOpTol, "cross_entropy dlogits " + shape_str(s));
    gpu().cross_entropy(gloss, gx, gx, gtg, scale);  // dlogits written over the logits
    expect_close(gloss, loss, kOpTol, "cross_entropy loss, in place " + shape_str(s));
    expect_close(gx, d, kOpTol, "cross_entropy dlogits, in place " + shape_str(s));
  }
}

TEST_F(ModelOps, AdamWThreeStepsWithDecay) {
  const Shape s{1237};
  Tensor p = host(22, s), m = Tensor::zeros(s), v = Tensor::zeros(s);
  Tensor gp = up(p), gm = up(m), gv = up(v);
  for (int step = 1; step <= 3; ++step) {
    Tensor g = host(30 + step, s, 0.1f);
    cpu().adamw_step(p, g, m, v, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, step);
    gpu().adamw_step(gp, up(g), gm, gv, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, step);
  }
  expect_close(gp, p, kElemTol, "adamw p");
  expect_close(gm, m, kElemTol, "adamw m");
  expect_close(gv, v, kElemTol, "adamw v");
}

TEST_F(ModelOps, RejectsHostTensorsAndBadShapes) {
  Tensor d = gpu().empty({4, 8}), h = host(40, {4, 8});
  Tensor rstd = gpu().empty({4}), w = gpu().empty({8});
  EXPECT_THROW(gpu().mul(d, d, h), Error);
  EXPECT_THROW(gpu().rmsnorm_forward(d, rstd, h, w, 1e-5f), Error);
  Tensor w7 = gpu().empty({7});
  EXPECT_THROW(gpu().rmsnorm_forward(d, rstd, d, w7, 1e-5f), Error);
  Tensor host_index = ints({0, 1, 2, 3}, {4});
  EXPECT_THROW(gpu().gather_rows(d, d, host_index, Tensor()), Error);
  Tensor f_index = gpu().empty({4});
  EXPECT_THROW(gpu().scatter_add_rows(d, d, f_index, Tensor()), Error);
  Tensor loss = gpu().empty({3});
  EXPECT_THROW(gpu().cross_entropy(loss, d, d, up(host_index), 1.0f), Error);
  Tensor odd = gpu().empty({1, 4, 1, 7});
  EXPECT_THROW(gpu().rope(odd, up(host_index), 10000.0f, false), Error);
  EXPECT_THROW(gpu().adamw_step(d, d, d, d, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0), Error);
}

}  // namespace
}  // namespace fivefold::test
