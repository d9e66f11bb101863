// SPDX-License-Identifier: MIT
// Attention ops of EigenOps against the double reference: forward (GQA, global positions, a
// row with no visible key), backward against finite differences (accumulating into dq/dk/dv),
// the online-softmax merge, and the blockwise attention of nn/ against one-shot attention
// (blocks in order and in reverse order, as a ring delivers them).
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "backends/cpu/eigen_ops.hpp"
#include "nn/attention.hpp"
#include "tests/nn/nn_test_util.hpp"

namespace fivefold {
namespace {

using ref::IVec;
using ref::Vec;
using testing_nn::expect_rel;
using testing_nn::random_tensor;

constexpr std::int64_t B = 2, T = 5, S = 7, H = 4, Hkv = 2, hd = 6;

Tensor ints(const IVec& v) { return Tensor::from_vector(std::vector<std::int32_t>(v.begin(), v.end()), {std::int64_t(v.size())}); }

// Query positions 2..6 over keys 0..6 (a later chunk attending to everything before it), and
// a first query at position -1 that sees no key.
const IVec kQPos{-1, 3, 4, 5, 6}, kKPos{0, 1, 2, 3, 4, 5, 6};

struct Inputs {
  Tensor q = random_tensor("q", {B, T, H, hd}), k = random_tensor("k", {B, S, Hkv, hd});
  Tensor v = random_tensor("v", {B, S, Hkv, hd}), dout = random_tensor("dout", {B, T, H, hd});
};

TEST(NnAttentionOps, ForwardMatchesReference) {
  EigenOps ops;
  Inputs in;
  Tensor out = ops.empty({B, T, H, hd}), lse = ops.empty({B, H, T});
  ops.attention_forward(out, lse, in.q, in.k, in.v, ints(kQPos), ints(kKPos));
  Vec rlse;
  const Vec rout = ref::attention(ref::to_double(in.q), ref::to_double(in.k), ref::to_double(in.v), B, T, S, H, Hkv,
                                  hd, kQPos, kKPos, &rlse);
  expect_rel("attention out", ref::to_double(out), rout, 2e-6);
  Vec ol = ref::to_double(lse);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h) {
      EXPECT_EQ(ol[(b * H + h) * T], -std::numeric_limits<double>::infinity()) << "masked row lse";
      ol[(b * H + h) * T] = rlse[(b * H + h) * T] = 0.0;  // compare the finite rest
    }
  expect_rel("attention lse", ol, rlse, 2e-6);
}

TEST(NnAttentionOps, BackwardMatchesFiniteDifferences) {
  EigenOps ops;
  Inputs in;
  Tensor out = ops.empty({B, T, H, hd}), lse = ops.empty({B, H, T});
  const Tensor qp = ints(kQPos), kp = ints(kKPos);
  ops.attention_forward(out, lse, in.q, in.k, in.v, qp, kp);
  // Start from nonzero gradients: the op must accumulate.
  Tensor dq = random_tensor("dq0", {B, T, H, hd}), dk = random_tensor("dk0", {B, S, Hkv, hd});
  Tensor dv = random_tensor("dv0", {B, S, Hkv, hd});
  const Vec dq0 = ref::to_double(dq), dk0 = ref::to_double(dk), dv0 = ref::to_double(dv);
  ops.attention_backward(dq, dk, dv, in.dout, in.q, in.k, in.v, out, lse, qp, kp);
  Vec Q = ref::to_double(in.q), K = ref::to_double(in.k), V = ref::to_double(in.v);
  const Vec DO = ref::to_double(in.dout);
  auto loss = [&] {
    const Vec o = ref::attention(Q, K, V, B, T, S, H, Hkv, hd, kQPos, kKPos);
    double s = 0.0;
    for (std::size_t i = 0; i < o.size(); ++i) s += o[i] * DO[i];
    return s;
  };
  Vec gq = ref::fd_grad(Q, loss), gk = ref::fd_grad(K, loss), gv = ref::fd_grad(V, loss);
  for (std::size_t i = 0; i < gq.size(); ++i) gq[i] += dq0[i];
  for (std::size_t i = 0; i < gk.size(); ++i) gk[i] += dk0[i], gv[i] += dv0[i];
  expect_rel("attention dq (accumulated)", ref::to_double(dq), gq, 1e-5);
  expect_rel("attention dk (accumulated, GQA sum)", ref::to_double(dk), gk, 1e-5);
  expect_rel("attention dv (accumulated, GQA sum)", ref::to_double(dv), gv, 1e-5);
}

TEST(NnAttentionOps, MergeOfTwoKeySetsEqualsAttentionOverTheirUnion) {
  EigenOps ops;
  Inputs in;
  const IVec qpos{0, 1, 2, 3, 4};  // query 0 sees no key of the second set
  const Tensor ka = nn::slice_dim1(ops, in.k, 0, 3), va = nn::slice_dim1(ops, in.v, 0, 3);
  const Tensor kb = nn::slice_dim1(ops, in.k, 3, 4), vb = nn::slice_dim1(ops, in.v, 3, 4);
  Tensor oa = ops.empty({B, T, H, hd}), la = ops.empty({B, H, T}), ob = oa.clone(), lb = la.clone();
  Tensor full = oa.clone(), lfull = la.clone();
  const IVec pa{0, 1, 2}, pb{3, 4, 5, 6};
  ops.attention_forward(oa, la, in.q, ka, va, ints(qpos), ints(pa));
  ops.attention_forward(ob, lb, in.q, kb, vb, ints(qpos), ints(pb));  // some rows: lse -inf
  ops.attention_forward(full, lfull, in.q, in.k, in.v, ints(qpos), ints(kKPos));
  const Tensor oa0 = oa.clone(), la0 = la.clone();
  Tensor o2 = ob.clone(), l2 = lb.clone();
  ops.attention_merge(oa, la, ob, lb);    // (a, b): some rows of b are empty (lse -inf)
  ops.attention_merge(o2, l2, oa0, la0);  // (b, a): the empty side first
  expect_rel("merge (a, b) out", ref::to_double(oa), ref::to_double(full), 2e-6);
  expect_rel("merge (a, b) lse", ref::to_double(la), ref::to_double(lfull), 2e-6);
  expect_rel("merge (b, a) out", ref::to_double(o2), ref::to_double(full), 2e-6);
  expect_rel("merge (b, a) lse", ref::to_double(l2), ref::to_double(lfull), 2e-6);
  // Merging a block nobody can see changes nothing.
  Tensor oe = ops.empty(oa.shape()), le = ops.empty(la.shape());
  ops.attention_forward(oe, le, in.q, kb, vb, ints(qpos), ints({100, 101, 102, 103}));
  ops.attention_merge(oa, la, oe, le);
  expect_rel("merge with an invisible block: out", ref::to_double(oa), ref::to_double(full), 2e-6);
  expect_rel("invisible block: out is 0", ref::to_double(oe), Vec(oe.numel(), 0.0), 0.0);
}

TEST(NnAttentionOps, BlockwiseAttentionEqualsOneShot) {
  EigenOps ops;
  Inputs in;
  const IVec qpos{2, 3, 4, 5, 6};
  const Tensor qp = ints(qpos), kp = ints(kKPos);
  Tensor out = ops.empty({B, T, H, hd}), lse = ops.empty({B, H, T});
  ops.attention_forward(out, lse, in.q, in.k, in.v, qp, kp);
  for (std::int64_t block : {1, 2, 3, 7}) {
    Tensor bo = ops.empty(out.shape()), bl = ops.empty(lse.shape());
    nn::blockwise_attention_forward(ops, bo, bl, in.q, in.k, in.v, qp, kp, block);
    const std::string tag = " (block " + std::to_string(block) + ")";
    expect_rel("blockwise out" + tag, ref::to_double(bo), ref::to_double(out), 2e-6);
    expect_rel("blockwise lse" + tag, ref::to_double(bl), ref::to_double(lse), 2e-6);
    Tensor dq = ops.zeros(in.q.shape()), dk = ops.zeros(in.k.shape()), dv = ops.zeros(in.v.shape());
    Tensor rq = dq.clone(), rk = dk.clone(), rv = dv.clone();
    ops.attention_backward(rq, rk, rv, in.dout, in.q, in.k, in.v, out, lse, qp, kp);
    nn::blockwise_attention_backward(ops, dq, dk, dv, in.dout, in.q, in.k, in.v, bo, bl, qp, kp, block);
    expect_rel("blockwise dq" + tag, ref::to_double(dq), ref::to_double(rq), 2e-6);
    expect_rel("blockwise dk" + tag, ref::to_double(dk), ref::to_double(rk), 2e-6);
    expect_rel("blockwise dv" + tag, ref::to_double(dv), ref::to_double(rv), 2e-6);
  }
  // Blocks in reverse order (a ring delivers its neighbours' blocks in rank order, not position order).
  nn::OnlineAttention online(ops, in.q, qp);
  for (std::int64_t s0 : {4, 2, 0})
    online.add_block(nn::slice_dim1(ops, in.k, s0, s0 == 4 ? 3 : 2), nn::slice_dim1(ops, in.v, s0, s0 == 4 ? 3 : 2),
                     kp.flat(s0, s0 == 4 ? 3 : 2));
  expect_rel("online attention, blocks reversed: out", ref::to_double(online.out()), ref::to_double(out), 2e-6);
  expect_rel("online attention, blocks reversed: lse", ref::to_double(online.lse()), ref::to_double(lse), 2e-6);
}

}  // namespace
}  // namespace fivefold
