// SPDX-License-Identifier: MIT
// Every model op of EigenOps (except attention, see test_attention_ops.cpp) against naive
// double-precision loops; backward ops against central finite differences of the double
// forward. fp32 results of these short row sums agree with double to ~1e-7, so 2e-6 relative
// L2 catches any wrong term while never failing on rounding.
#include <cmath>

#include <gtest/gtest.h>

#include "backends/cpu/eigen_ops.hpp"
#include "tests/nn/nn_test_util.hpp"

namespace fivefold {
namespace {

using ref::Vec;
using testing_nn::expect_rel;
using testing_nn::random_tensor;
constexpr double kTol = 2e-6;

TEST(NnOps, MulSumSquaresRowDot) {
  EigenOps ops;
  const Tensor a = random_tensor("a", {3, 5}), b = random_tensor("b", {3, 5});
  Tensor y = ops.empty({3, 5}), d = ops.empty({3});
  ops.mul(y, a, b);
  ops.row_dot(d, a, b);
  const Vec A = ref::to_double(a), Bv = ref::to_double(b);
  Vec ry(15), rd(3, 0.0);
  double ss = 0.0;
  for (int i = 0; i < 15; ++i) {
    ry[i] = A[i] * Bv[i];
    rd[i / 5] += A[i] * Bv[i];
    ss += A[i] * A[i];
  }
  expect_rel("mul", ref::to_double(y), ry, kTol);
  expect_rel("row_dot", ref::to_double(d), rd, kTol);
  expect_rel("sum_squares", {ops.sum_squares(a)}, {ss}, 1e-12);
}

TEST(NnOps, GatherAndScatterAddRows) {
  EigenOps ops;
  const Tensor src = random_tensor("src", {4, 3}), w = random_tensor("w", {5});
  const Tensor idx = Tensor::from_vector(std::vector<std::int32_t>{2, 0, 2, 3, 2}, {5});
  const Vec S = ref::to_double(src), W = ref::to_double(w);
  Tensor out = ops.empty({5, 3}), outw = ops.empty({5, 3});
  ops.gather_rows(out, src, idx, Tensor());
  ops.gather_rows(outw, src, idx, w);
  Vec r(15), rw(15);
  const int id[5] = {2, 0, 2, 3, 2};
  for (int i = 0; i < 5; ++i)
    for (int c = 0; c < 3; ++c) {
      r[i * 3 + c] = S[id[i] * 3 + c];
      rw[i * 3 + c] = W[i] * S[id[i] * 3 + c];
    }
  expect_rel("gather_rows", ref::to_double(out), r, 0.0);
  expect_rel("gather_rows weighted", ref::to_double(outw), rw, kTol);
  // scatter-add accumulates onto what dst holds, repeated indices summed.
  const Tensor upd = random_tensor("upd", {5, 3});
  Tensor dst = random_tensor("dst", {4, 3}), dstw = dst.clone();
  Vec rd = ref::to_double(dst), rdw = rd;
  const Vec U = ref::to_double(upd);
  ops.scatter_add_rows(dst, upd, idx, Tensor());
  ops.scatter_add_rows(dstw, upd, idx, w);
  for (int i = 0; i < 5; ++i)
    for (int c = 0; c < 3; ++c) {
      rd[id[i] * 3 + c] += U[i * 3 + c];
      rdw[id[i] * 3 + c] += W[i] * U[i * 3 + c];
    }
  expect_rel("scatter_add_rows", ref::to_double(dst), rd, kTol);
  expect_rel("scatter_add_rows weighted", ref::to_double(dstw), rdw, kTol);
  const Tensor bad = Tensor::from_vector(std::vector<std::int32_t>{0, 4, 0, 0, 0}, {5});
  EXPECT_THROW(ops.gather_rows(out, src, bad, Tensor()), Error);
}

TEST(NnOps, RmsNormForwardBackward) {
  EigenOps ops;
  const std::int64_t N = 6, C = 8;
  const Tensor x = random_tensor("x", {2, 3, C}), w = random_tensor("w", {C}, 0.2f, 1.0f);
  const Tensor dy = random_tensor("dy", {2, 3, C});
  Tensor y = ops.empty({2, 3, C}), rstd = ops.empty({N});
  ops.rmsnorm_forward(y, rstd, x, w, 1e-5f);
  Vec X = ref::to_double(x), W = ref::to_double(w);
  const Vec DY = ref::to_double(dy);
  expect_rel("rmsnorm y", ref::to_double(y), ref::rmsnorm(X, C, W, 1e-5), kTol);
  Vec rr(N);
  for (int i = 0; i < N; ++i) {
    double ms = 0.0;
    for (int c = 0; c < C; ++c) ms += X[i * C + c] * X[i * C + c];
    rr[i] = 1.0 / std::sqrt(ms / C + 1e-5);
  }
  expect_rel("rmsnorm rstd", ref::to_double(rstd), rr, kTol);
  Tensor dx = ops.empty({2, 3, C}), dw = random_tensor("dw0", {C});  // dw accumulates
  const Vec dw0 = ref::to_double(dw);
  ops.rmsnorm_backward(dx, dw, dy, x, w, rstd);
  auto loss = [&] {
    const Vec yy = ref::rmsnorm(X, C, W, 1e-5);
    double s = 0.0;
    for (std::size_t i = 0; i < yy.size(); ++i) s += yy[i] * DY[i];
    return s;
  };
  expect_rel("rmsnorm dx", ref::to_double(dx), ref::fd_grad(X, loss), 1e-5);
  Vec gw = ref::fd_grad(W, loss);
  for (int c = 0; c < C; ++c) gw[c] += dw0[c];
  expect_rel("rmsnorm dw (accumulated)", ref::to_double(dw), gw, 1e-5);
}

TEST(NnOps, RopeForwardAndInverse) {
  EigenOps ops;
  const std::int64_t B = 2, T = 4, nh = 3, hd = 8;
  const Tensor x0 = random_tensor("x", {B, T, nh, hd});
  const ref::IVec pos{5, 6, 7, 300};  // global positions of a chunk, one far out
  const Tensor p = Tensor::from_vector(std::vector<std::int32_t>(pos.begin(), pos.end()), {T});
  Tensor x = x0.clone();
  ops.rope(x, p, 10000.0f, false);
  Vec r = ref::to_double(x0);
  ref::rope(r, B, T, nh, hd, pos, 10000.0);
  expect_rel("rope", ref::to_double(x), r, kTol);
  Tensor xi = x0.clone();
  ops.rope(xi, p, 10000.0f, true);  // inverse = rotation by -angle = rope at -pos
  Vec ri = ref::to_double(x0);
  ref::rope(ri, B, T, nh, hd, {-5, -6, -7, -300}, 10000.0);
  expect_rel("rope inverse", ref::to_double(xi), ri, kTol);
  ops.rope(x, p, 10000.0f, true);
  expect_rel("rope then inverse", ref::to_double(x), ref::to_double(x0), kTol);
}

TEST(NnOps, SwiGluForwardBackward) {
  EigenOps ops;
  const Tensor g = random_tensor("g", {4, 6}, 2.0f), u = random_tensor("u", {4, 6}), dh = random_tensor("dh", {4, 6});
  Tensor h = ops.empty({4, 6}), dg = ops.empty({4, 6}), du = ops.empty({4, 6});
  ops.swiglu_forward(h, g, u);
  ops.swiglu_backward(dg, du, dh, g, u);
  Vec G = ref::to_double(g), U = ref::to_double(u);
  const Vec DH = ref::to_double(dh);
  auto fwd = [&] {
    Vec out(G.size());
    for (std::size_t i = 0; i < G.size(); ++i) out[i] = G[i] / (1.0 + std::exp(-G[i])) * U[i];
    return out;
  };
  auto loss = [&] {
    const Vec o = fwd();
    double s = 0.0;
    for (std::size_t i = 0; i < o.size(); ++i) s += o[i] * DH[i];
    return s;
  };
  expect_rel("swiglu h", ref::to_double(h), fwd(), kTol);
  expect_rel("swiglu dg", ref::to_double(dg), ref::fd_grad(G, loss), 1e-5);
  expect_rel("swiglu du", ref::to_double(du), ref::fd_grad(U, loss), 1e-5);
}

TEST(NnOps, SoftmaxRowsAndCrossEntropy) {
  EigenOps ops;
  const std::int64_t N = 5, V = 7;
  const Tensor x = random_tensor("logits", {N, V}, 3.0f);
  const Tensor tg = Tensor::from_vector(std::vector<std::int32_t>{0, 6, 3, 3, 1}, {N});
  Tensor p = ops.empty({N, V}), loss = ops.empty({N}), dl = ops.empty({N, V});
  ops.softmax_rows(p, x);
  ops.cross_entropy(loss, dl, x, tg, 0.5f);
  const Vec X = ref::to_double(x);
  Vec rp(N * V), rl(N), rdl(N * V);
  const int t[5] = {0, 6, 3, 3, 1};
  for (int i = 0; i < N; ++i) {
    double z = 0.0;
    for (int v = 0; v < V; ++v) z += std::exp(X[i * V + v]);
    for (int v = 0; v < V; ++v) {
      rp[i * V + v] = std::exp(X[i * V + v]) / z;
      rdl[i * V + v] = 0.5 * (rp[i * V + v] - (v == t[i] ? 1.0 : 0.0));
    }
    rl[i] = std::log(z) - X[i * V + t[i]];
  }
  expect_rel("softmax_rows", ref::to_double(p), rp, kTol);
  expect_rel("cross_entropy loss", ref::to_double(loss), rl, kTol);
  expect_rel("cross_entropy dlogits", ref::to_double(dl), rdl, kTol);
  Tensor inplace = x.clone(), loss2 = ops.empty({N});
  ops.cross_entropy(loss2, inplace, inplace, tg, 0.5f);  // dlogits aliasing logits
  expect_rel("cross_entropy in place dlogits", ref::to_double(inplace), rdl, kTol);
  expect_rel("cross_entropy in place loss", ref::to_double(loss2), rl, kTol);
  Tensor p2 = x.clone();
  ops.softmax_rows(p2, p2);
  expect_rel("softmax_rows in place", ref::to_double(p2), rp, kTol);
}

// torch.optim.AdamW (foreach=False) written out in double: decay, moments, bias correction.
TEST(NnOps, AdamWStepMatchesTorchSemantics) {
  EigenOps ops;
  const float lr = 0.01f, b1 = 0.9f, b2 = 0.995f, eps = 1e-6f, wd = 0.1f;
  Tensor p = random_tensor("p", {10}), m = ops.zeros({10}), v = ops.zeros({10});
  Vec P = ref::to_double(p), M(10, 0.0), Vv(10, 0.0);
  for (int step = 1; step <= 3; ++step) {
    const Tensor g = random_tensor("g" + std::to_string(step), {10});
    const Vec G = ref::to_double(g), before = ref::to_double(p);
    ops.adamw_step(p, g, m, v, lr, b1, b2, eps, wd, step);
    Vec ours = ref::to_double(p), want(10);
    for (int i = 0; i < 10; ++i) {
      P[i] *= 1.0 - double(lr) * wd;
      M[i] = b1 * M[i] + (1.0 - b1) * G[i];
      Vv[i] = b2 * Vv[i] + (1.0 - b2) * G[i] * G[i];
      const double bc1 = 1.0 - std::pow(double(b1), step), bc2 = 1.0 - std::pow(double(b2), step);
      P[i] -= lr / bc1 * M[i] / (std::sqrt(Vv[i]) / std::sqrt(bc2) + eps);
      ours[i] -= before[i];  // compare the update itself (p is ~100x larger than it)
      want[i] = P[i] - before[i];
      P[i] = before[i] + want[i];  // go on from our fp32 p
    }
    // p ~ 1 is stored in fp32 (6e-8 absolute), i.e. ~1e-5 of a 0.01 update: 5e-5 on the
    // update; any wrong term (bias correction, decay, eps placement) is off by > 1e-3.
    expect_rel("adamw update at step " + std::to_string(step), ours, want, 5e-5);
    expect_rel("adamw p after step " + std::to_string(step), ref::to_double(p), P, kTol);
    expect_rel("adamw m after step " + std::to_string(step), ref::to_double(m), M, kTol);
    expect_rel("adamw v after step " + std::to_string(step), ref::to_double(v), Vv, kTol);
  }
}

}  // namespace
}  // namespace fivefold
