// SPDX-License-Identifier: MIT
// Blockwise attention with an online softmax: one attention_forward per key/value block,
// merged by logsumexp weights. Ring attention (chapter 05) feeds it the blocks that arrive
// from its neighbours; here it is also a one-rank routine, tested equal to one-shot attention.
#include <limits>

#include "common/check.hpp"
#include "nn/attention.hpp"
#include "nn/layers.hpp"

namespace fivefold::nn {

OnlineAttention::OnlineAttention(Ops& ops, const Tensor& q, const Tensor& q_pos)
    : ops_(&ops), q_(q), q_pos_(q_pos), out_(ops.zeros(q.shape())), lse_(ops.empty({q.dim(0), q.dim(2), q.dim(1)})) {
  ops.fill(lse_, -std::numeric_limits<float>::infinity());  // no keys yet: weight 0
}

void OnlineAttention::add_block(const Tensor& k, const Tensor& v, const Tensor& k_pos) {
  ensure(*ops_, out_b_, out_.shape());
  ensure(*ops_, lse_b_, lse_.shape());
  ops_->attention_forward(out_b_, lse_b_, q_, k, v, q_pos_, k_pos);  // this block alone
  ops_->attention_merge(out_, lse_, out_b_, lse_b_);                 // TUTORIAL: rescale and add
}

Tensor slice_dim1(Ops& ops, const Tensor& x, std::int64_t start, std::int64_t len) {
  const std::int64_t B = x.dim(0), S = x.dim(1), inner = x.numel() / (B * S);
  FIVEFOLD_CHECK(start >= 0 && len >= 0 && start + len <= S, "slice_dim1: [", start, ", ", start + len,
                 ") is outside dimension 1 of ", x.str());
  Shape shape = x.shape();
  shape[1] = len;
  Tensor out = ops.empty(shape, x.dtype());
  for (std::int64_t b = 0; b < B; ++b)
    out.flat(b * len * inner, len * inner).copy_from(x.flat((b * S + start) * inner, len * inner));
  return out;
}

void add_into_dim1(Ops& ops, Tensor& dst, const Tensor& src, std::int64_t start) {
  const std::int64_t B = dst.dim(0), S = dst.dim(1), len = src.dim(1), inner = dst.numel() / (B * S);
  FIVEFOLD_CHECK(src.dim(0) == B && src.numel() == B * len * inner && start + len <= S, "add_into_dim1: ",
                 src.str(), " does not fit ", dst.str(), " at ", start);
  for (std::int64_t b = 0; b < B; ++b) {
    Tensor d = dst.flat((b * S + start) * inner, len * inner);
    ops.axpy(d, 1.0f, src.flat(b * len * inner, len * inner));
  }
}

void blockwise_attention_forward(Ops& ops, Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& q_pos, const Tensor& k_pos, std::int64_t block) {
  FIVEFOLD_CHECK(block >= 1, "blockwise attention needs a block size >= 1 (got ", block, ")");
  OnlineAttention online(ops, q, q_pos);
  const std::int64_t S = k.dim(1);
  for (std::int64_t s0 = 0; s0 < S; s0 += block) {
    const std::int64_t len = std::min(block, S - s0);
    online.add_block(slice_dim1(ops, k, s0, len), slice_dim1(ops, v, s0, len), k_pos.flat(s0, len));
  }
  out.copy_from(online.out());
  lse.copy_from(online.lse());
}

void blockwise_attention_backward(Ops& ops, Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout,
                                  const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                  const Tensor& lse, const Tensor& q_pos, const Tensor& k_pos, std::int64_t block) {
  FIVEFOLD_CHECK(block >= 1, "blockwise attention needs a block size >= 1 (got ", block, ")");
  const std::int64_t S = k.dim(1);
  for (std::int64_t s0 = 0; s0 < S; s0 += block) {
    const std::int64_t len = std::min(block, S - s0);
    const Tensor kb = slice_dim1(ops, k, s0, len), vb = slice_dim1(ops, v, s0, len);
    Tensor dkb = ops.zeros(kb.shape()), dvb = ops.zeros(vb.shape());
    // With the FULL out/lse, each block's share of the gradient is exact on its own.
    ops.attention_backward(dq, dkb, dvb, dout, q, kb, vb, out, lse, q_pos, k_pos.flat(s0, len));
    add_into_dim1(ops, dk, dkb, s0);
    add_into_dim1(ops, dv, dvb, s0);
  }
}

}  // namespace fivefold::nn
