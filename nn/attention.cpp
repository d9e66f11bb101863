// SPDX-License-Identifier: MIT
// The attention block: projections (GQA), RoPE, causal attention with positions, and the
// KV-cache inference step.
#include "nn/attention.hpp"

#include "common/check.hpp"
#include "nn/layers.hpp"

namespace fivefold::nn {

AttentionWeights attention_weights(ParamRegistry& reg, const std::string& prefix) {
  Param& q = reg.get(prefix + ".q_proj.weight");
  Param& k = reg.get(prefix + ".k_proj.weight");
  Param& v = reg.get(prefix + ".v_proj.weight");
  Param& o = reg.get(prefix + ".o_proj.weight");
  return {q.value, k.value, v.value, o.value, q.grad, k.grad, v.grad, o.grad};
}

Tensor positions(Ops& ops, std::int64_t start, std::int64_t n) {
  std::vector<std::int32_t> p(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<std::int32_t>(start + i);
  return ops.upload(Tensor::from_vector(p, {n}));
}

KvCache::KvCache(Ops& ops, std::int64_t batch, std::int64_t max_seq, std::int64_t kv_heads, std::int64_t head_dim)
    : k(ops.zeros({batch, max_seq, kv_heads, head_dim})),
      v(ops.zeros({batch, max_seq, kv_heads, head_dim})),
      k_pos(positions(ops, 0, max_seq)) {}

Attention::Attention(Ops& ops, AttentionWeights w, int heads, int kv_heads, int head_dim, float rope_theta)
    : ops_(&ops), w_(std::move(w)), heads_(heads), kv_heads_(kv_heads), head_dim_(head_dim), theta_(rope_theta) {
  FIVEFOLD_CHECK(w_.q.dim(0) == heads * head_dim && w_.k.dim(0) == kv_heads * head_dim &&
                     w_.o.dim(1) == heads * head_dim,
                 "Attention: q_proj ", w_.q.str(), ", k_proj ", w_.k.str(), ", o_proj ", w_.o.str(),
                 " do not match ", heads, " heads, ", kv_heads, " kv heads of size ", head_dim);
}

// q, k, v of the tokens a [B, T, C] at positions pos [T], RoPE applied to q and k.
void Attention::project(const Tensor& a, const Tensor& pos) {
  const std::int64_t B = a.dim(0), T = a.dim(1);
  ensure(*ops_, q_, {B, T, heads_, head_dim_});     // [B, T, H, hd]
  ensure(*ops_, k_, {B, T, kv_heads_, head_dim_});  // [B, T, Hkv, hd]
  ensure(*ops_, v_, k_.shape());
  Tensor q2 = q_.view({B * T, heads_ * head_dim_}), k2 = k_.view({B * T, kv_heads_ * head_dim_});
  Tensor v2 = v_.view(k2.shape());
  linear_forward(*ops_, q2, a, w_.q);
  linear_forward(*ops_, k2, a, w_.k);
  linear_forward(*ops_, v2, a, w_.v);
  ops_->rope(q_, pos, theta_, false);  // TUTORIAL: positions enter only here, through q and k
  ops_->rope(k_, pos, theta_, false);
}

const Tensor& Attention::forward(const Tensor& a, const Tensor& pos) {
  const std::int64_t B = a.dim(0), T = a.dim(1);
  a_ = a;
  pos_ = pos;
  project(a, pos);
  ensure(*ops_, o_, q_.shape());
  ensure(*ops_, lse_, {B, heads_, T});
  ops_->attention_forward(o_, lse_, q_, k_, v_, pos, pos);  // causal: key s visible iff pos[s] <= pos[t]
  ensure(*ops_, y_, a.shape());
  linear_forward(*ops_, y_, o_.view({B * T, heads_ * head_dim_}), w_.o);  // concat heads, then o_proj
  return y_;
}

const Tensor& Attention::backward(const Tensor& dy) {
  const std::int64_t B = a_.dim(0), T = a_.dim(1);
  ensure(*ops_, d_o_, o_.shape());
  Tensor do2 = d_o_.view({B * T, heads_ * head_dim_});
  linear_backward(*ops_, do2, w_.d_o, dy, o_.view(do2.shape()), w_.o);
  ensure(*ops_, dq_, q_.shape());
  ensure(*ops_, dk_, k_.shape());
  ensure(*ops_, dv_, v_.shape());
  ops_->fill(dq_, 0.0f);  // attention_backward accumulates
  ops_->fill(dk_, 0.0f);
  ops_->fill(dv_, 0.0f);
  ops_->attention_backward(dq_, dk_, dv_, d_o_, q_, k_, v_, o_, lse_, pos_, pos_);
  ops_->rope(dq_, pos_, theta_, true);  // the backward of a rotation is the inverse rotation
  ops_->rope(dk_, pos_, theta_, true);
  ensure(*ops_, da_, a_.shape());
  linear_backward(*ops_, da_, w_.dq, dq_.view({B * T, heads_ * head_dim_}), a_, w_.q);
  linear_backward(*ops_, da_, w_.dk, dk_.view({B * T, kv_heads_ * head_dim_}), a_, w_.k, true);
  linear_backward(*ops_, da_, w_.dv, dv_.view({B * T, kv_heads_ * head_dim_}), a_, w_.v, true);
  return da_;
}

const Tensor& Attention::forward_cached(const Tensor& a, std::int64_t start, KvCache& cache) {
  const std::int64_t B = a.dim(0), T = a.dim(1), smax = cache.k.dim(1), row = kv_heads_ * head_dim_;
  FIVEFOLD_CHECK(cache.k.dim(0) == B && start >= 0 && start + T <= smax, "forward_cached: tokens ", start, "..",
                 start + T - 1, " of batch ", B, " do not fit the cache ", cache.k.str());
  const Tensor pos = positions(*ops_, start, T);
  project(a, pos);
  for (std::int64_t b = 0; b < B; ++b) {  // TUTORIAL: append this step's k/v at slots start..start+T-1
    cache.k.flat((b * smax + start) * row, T * row).copy_from(k_.flat(b * T * row, T * row));
    cache.v.flat((b * smax + start) * row, T * row).copy_from(v_.flat(b * T * row, T * row));
  }
  ensure(*ops_, o_, q_.shape());
  ensure(*ops_, lse_, {B, heads_, T});
  // Slots not written yet have positions > every query position: causality masks them.
  ops_->attention_forward(o_, lse_, q_, cache.k, cache.v, pos, cache.k_pos);
  ensure(*ops_, y_, a.shape());
  linear_forward(*ops_, y_, o_.view({B * T, heads_ * head_dim_}), w_.o);
  return y_;
}

}  // namespace fivefold::nn
