// SPDX-License-Identifier: MIT
// Attention on CudaOps against EigenOps: GQA (H != Hkv), MHA, MQA, T not a power of two, key
// rows longer than one block, rows with no visible key (lse -inf), no keys at all, the
// blockwise (ring) backward over a block of the keys, the online-softmax merge with -inf on
// either side, and bitwise determinism of the backward.
// Tolerance 1e-5 relative L2 (the GEMMs and row sums are ordered differently from Eigen's).
#include "cuda_op_compare.hpp"

namespace fivefold::test {
namespace {

using AttentionOps = CudaModelOpsTest;

struct Case {
  std::int64_t B, T, S, H, Hkv, hd;
  std::int32_t q_start, k_start;  // positions q_start + t and k_start + s
  std::string name;
};

std::vector<Case> cases() {
  return {
      {2, 7, 7, 4, 2, 16, 0, 0, "GQA self T=7"},
      {1, 5, 9, 6, 3, 8, 0, 3, "GQA rows without keys"},
      {3, 33, 33, 3, 3, 64, 0, 0, "MHA T=33 hd=64"},
      {2, 1, 300, 4, 1, 32, 150, 0, "MQA decode S=300"},
      {2, 11, 20, 8, 2, 16, 9, 0, "GQA cached T=11 S=20"},
  };
}

Tensor positions(std::int64_t n, std::int32_t start) {
  std::vector<std::int32_t> p(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) p[i] = start + static_cast<std::int32_t>(i);
  return Tensor::from_vector(p, {n});
}

TEST_F(AttentionOps, ForwardMatchesEigen) {
  for (const Case& c : cases()) {
    Tensor q = host(1, {c.B, c.T, c.H, c.hd}, 2.0f), k = host(2, {c.B, c.S, c.Hkv, c.hd}, 2.0f);
    Tensor v = host(3, k.shape()), qp = positions(c.T, c.q_start), kp = positions(c.S, c.k_start);
    Tensor out = Tensor::empty(q.shape()), lse = Tensor::empty({c.B, c.H, c.T});
    cpu().attention_forward(out, lse, q, k, v, qp, kp);
    Tensor gout = gpu().empty(q.shape()), glse = gpu().empty({c.B, c.H, c.T});
    gpu().fill(gout, 7.0f);  // stale values must be overwritten
    gpu().attention_forward(gout, glse, up(q), up(k), up(v), up(qp), up(kp));
    expect_close(gout, out, kOpTol, "attention out, " + c.name);
    expect_close_inf(glse, lse, kOpTol, "attention lse, " + c.name);
  }
}

TEST_F(AttentionOps, ForwardWithNoKeys) {
  Tensor q = host(4, {2, 3, 4, 8}), k = Tensor::empty({2, 0, 2, 8});
  Tensor gout = gpu().empty(q.shape()), glse = gpu().empty({2, 4, 3});
  gpu().fill(gout, 7.0f);
  gpu().attention_forward(gout, glse, up(q), up(k), up(k), up(positions(3, 0)), up(positions(0, 0)));
  for (float x : gout.to_vector()) ASSERT_EQ(x, 0.0f);
  for (float x : glse.to_vector()) ASSERT_EQ(x, -std::numeric_limits<float>::infinity());
}

// dq, dk, dv accumulate into random initial values; out and lse come from the CPU forward.
void check_backward(CudaModelOpsTest& t, Ops& cpu, Ops& gpu, const Case& c, std::int64_t k_first,
                    std::int64_t k_len) {
  auto up = [&](const Tensor& x) { return gpu.upload(x); };
  Tensor q = CudaModelOpsTest::host(5, {c.B, c.T, c.H, c.hd}, 2.0f);
  Tensor k = CudaModelOpsTest::host(6, {c.B, c.S, c.Hkv, c.hd}, 2.0f), v = CudaModelOpsTest::host(7, k.shape());
  Tensor qp = positions(c.T, c.q_start), kp = positions(c.S, c.k_start);
  Tensor out = Tensor::empty(q.shape()), lse = Tensor::empty({c.B, c.H, c.T});
  cpu.attention_forward(out, lse, q, k, v, qp, kp);  // the FULL attention
  // This call's key block [k_first, k_first + k_len) (all keys when it is the whole range).
  auto block = [&](const Tensor& x) {
    Tensor b = Tensor::empty({c.B, k_len, c.Hkv, c.hd});
    const std::int64_t row = c.Hkv * c.hd;
    for (std::int64_t i = 0; i < c.B; ++i)
      b.flat(i * k_len * row, k_len * row).copy_from(x.flat((i * c.S + k_first) * row, k_len * row));
    return b;
  };
  Tensor kb = block(k), vb = block(v), kpb = positions(k_len, c.k_start + static_cast<std::int32_t>(k_first));
  Tensor dout = CudaModelOpsTest::host(8, q.shape());
  Tensor dq = CudaModelOpsTest::host(9, q.shape()), dk = CudaModelOpsTest::host(10, kb.shape());
  Tensor dv = CudaModelOpsTest::host(11, kb.shape());
  Tensor gdq = up(dq), gdk = up(dk), gdv = up(dv), gdq2 = up(dq), gdk2 = up(dk), gdv2 = up(dv);
  cpu.attention_backward(dq, dk, dv, dout, q, kb, vb, out, lse, qp, kpb);
  Tensor gq = up(q), gk = up(kb), gv = up(vb), gdout = up(dout), gout = up(out), glse = up(lse);
  Tensor gqp = up(qp), gkp = up(kpb);
  gpu.attention_backward(gdq, gdk, gdv, gdout, gq, gk, gv, gout, glse, gqp, gkp);
  gpu.attention_backward(gdq2, gdk2, gdv2, gdout, gq, gk, gv, gout, glse, gqp, gkp);
  const std::string tag = c.name + (k_len < c.S ? " (key block)" : "");
  t.expect_close(gdq, dq, kOpTol, "attention dq, " + tag);
  t.expect_close(gdk, dk, kOpTol, "attention dk, " + tag);
  t.expect_close(gdv, dv, kOpTol, "attention dv, " + tag);
  t.expect_same_bits(gdq, gdq2, "attention dq, " + tag);
  t.expect_same_bits(gdk, gdk2, "attention dk, " + tag);
  t.expect_same_bits(gdv, gdv2, "attention dv, " + tag);
}

TEST_F(AttentionOps, BackwardMatchesEigen) {
  for (const Case& c : cases()) check_backward(*this, cpu(), gpu(), c, 0, c.S);
}

TEST_F(AttentionOps, BackwardOverAKeyBlockOfTheFullAttention) {
  for (const Case& c : cases()) {
    if (c.S < 2) continue;
    check_backward(*this, cpu(), gpu(), c, c.S / 2, c.S - c.S / 2);  // the second half of the keys
  }
}

TEST_F(AttentionOps, MergeWithInfiniteSides) {
  const std::int64_t B = 2, T = 5, H = 3, hd = 8;
  const float inf = std::numeric_limits<float>::infinity();
  Tensor out = host(12, {B, T, H, hd}), out_b = host(13, out.shape());
  Tensor lse = host(14, {B, H, T}, 3.0f), lse_b = host(15, lse.shape(), 3.0f);
  for (std::int64_t i = 0; i < lse.numel(); i += 3) lse.at<float>(i) = -inf;    // a side with no keys
  for (std::int64_t i = 0; i < lse.numel(); i += 4) lse_b.at<float>(i) = -inf;  // (i % 12 == 0: both)
  Tensor gout = up(out), glse = up(lse);
  cpu().attention_merge(out, lse, out_b, lse_b);
  gpu().attention_merge(gout, glse, up(out_b), up(lse_b));
  expect_close(gout, out, kOpTol, "attention_merge out");
  expect_close_inf(glse, lse, kOpTol, "attention_merge lse");
}

TEST_F(AttentionOps, RejectsBadShapes) {
  Tensor q = gpu().empty({1, 4, 3, 8}), k = gpu().empty({1, 4, 2, 8});  // 2 does not divide 3
  Tensor out = gpu().empty(q.shape()), lse = gpu().empty({1, 3, 4}), pos = up(positions(4, 0));
  EXPECT_THROW(gpu().attention_forward(out, lse, q, k, k, pos, pos), Error);
  Tensor k1 = gpu().empty({1, 4, 1, 8}), lse_bad = gpu().empty({1, 4, 3});
  EXPECT_THROW(gpu().attention_forward(out, lse_bad, q, k1, k1, pos, pos), Error);
  Tensor fpos = gpu().empty({4});
  EXPECT_THROW(gpu().attention_forward(out, lse, q, k1, k1, fpos, pos), Error);
}

}  // namespace
}  // namespace fivefold::test
