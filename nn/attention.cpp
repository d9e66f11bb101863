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
void Attention::project(Saved& s, const Tensor& a, const Tensor& pos) {
  const std::int64_t B = a.dim(0), T = a.dim(1);
  ensure(*ops_, s.q, {B, T, heads_, head_dim_});     // [B, T, H, hd]
  ensure(*ops_, s.k, {B, T, kv_heads_, head_dim_});  // [B, T, Hkv, hd]
  ensure(*ops_, s.v, s.k.shape());
  Tensor q2 = s.q.view({B * T, heads_ * head_dim_}), k2 = s.k.view({B * T, kv_heads_ * head_dim_});
  Tensor v2 = s.v.view(k2.shape());
  linear_forward(*ops_, q2, a, w_.q);
  linear_forward(*ops_, k2, a, w_.k);
  linear_forward(*ops_, v2, a, w_.v);
  ops_->rope(s.q, pos, theta_, false);  // TUTORIAL: positions enter only here, through q and k
  ops_->rope(s.k, pos, theta_, false);
}

const Tensor& Attention::forward(Acts& acts, const Tensor& a, const Pass& pass, KvCache* cache) {
  Saved& s = static_cast<Saved&>(acts);
  if (cache) return attend_cached(s, a, pass.start, *cache);
  const std::int64_t B = a.dim(0), T = a.dim(1);
  s.a = a;
  s.pos = pass.pos;
  project(s, a, pass.pos);
  attend(s);
  return output_projection(s, B, T);
}

void Attention::attend(Saved& s) {
  const std::int64_t B = s.q.dim(0), T = s.q.dim(1);
  ensure(*ops_, s.o, s.q.shape());
  ensure(*ops_, s.lse, {B, heads_, T});
  ops_->attention_forward(s.o, s.lse, s.q, s.k, s.v, s.pos, s.pos);  // causal: key s visible iff pos[s] <= pos[t]
}

void Attention::attend_backward(Saved& s) {
  ensure(*ops_, s.dq, s.q.shape());
  ensure(*ops_, s.dk, s.k.shape());
  ensure(*ops_, s.dv, s.v.shape());
  ops_->fill(s.dq, 0.0f);  // attention_backward accumulates
  ops_->fill(s.dk, 0.0f);
  ops_->fill(s.dv, 0.0f);
  ops_->attention_backward(s.dq, s.dk, s.dv, s.d_o, s.q, s.k, s.v, s.o, s.lse, s.pos, s.pos);
}

const Tensor& Attention::output_projection(Saved& s, std::int64_t B, std::int64_t T) {
  ensure(*ops_, s.y, {B, T, w_.o.dim(0)});
  linear_forward(*ops_, s.y, s.o.view({B * T, heads_ * head_dim_}), w_.o);  // concat heads, then o_proj
  return s.y;
}

const Tensor& Attention::backward_input(Acts& acts, const Tensor& dy) {
  Saved& s = static_cast<Saved&>(acts);
  const std::int64_t B = s.a.dim(0), T = s.a.dim(1);
  s.dy = dy;
  ensure(*ops_, s.d_o, s.o.shape());
  Tensor do2 = s.d_o.view({B * T, heads_ * head_dim_});
  linear_backward_input(*ops_, do2, dy, w_.o);
  attend_backward(s);
  ops_->rope(s.dq, s.pos, theta_, true);  // the backward of a rotation is the inverse rotation
  ops_->rope(s.dk, s.pos, theta_, true);
  ensure(*ops_, s.da, s.a.shape());
  linear_backward_input(*ops_, s.da, s.dq.view({B * T, heads_ * head_dim_}), w_.q);
  linear_backward_input(*ops_, s.da, s.dk.view({B * T, kv_heads_ * head_dim_}), w_.k, true);
  linear_backward_input(*ops_, s.da, s.dv.view({B * T, kv_heads_ * head_dim_}), w_.v, true);
  return s.da;
}

void Attention::backward_weight(Acts& acts) {
  Saved& s = static_cast<Saved&>(acts);
  const std::int64_t B = s.a.dim(0), T = s.a.dim(1);
  linear_backward_weight(*ops_, w_.d_o, s.dy, s.o.view({B * T, heads_ * head_dim_}));
  linear_backward_weight(*ops_, w_.dq, s.dq.view({B * T, heads_ * head_dim_}), s.a);
  linear_backward_weight(*ops_, w_.dk, s.dk.view({B * T, kv_heads_ * head_dim_}), s.a);
  linear_backward_weight(*ops_, w_.dv, s.dv.view({B * T, kv_heads_ * head_dim_}), s.a);
}

const Tensor& Attention::forward(const Tensor& a, const Tensor& pos) {
  Pass p;
  p.pos = pos;
  return forward(own_, a, p, nullptr);
}

const Tensor& Attention::backward(const Tensor& dy) {
  const Tensor& da = backward_input(own_, dy);
  backward_weight(own_);
  return da;
}

const Tensor& Attention::forward_cached(const Tensor& a, std::int64_t start, KvCache& cache) {
  return attend_cached(own_, a, start, cache);
}

const Tensor& Attention::attend_cached(Saved& s, const Tensor& a, std::int64_t start, KvCache& cache) {
  const std::int64_t B = a.dim(0), T = a.dim(1), smax = cache.k.dim(1), row = kv_heads_ * head_dim_;
  FIVEFOLD_CHECK(cache.k.dim(0) == B && start >= 0 && start + T <= smax, "forward_cached: tokens ", start, "..",
                 start + T - 1, " of batch ", B, " do not fit the cache ", cache.k.str());
  const Tensor pos = positions(*ops_, start, T);
  project(s, a, pos);
  for (std::int64_t b = 0; b < B; ++b) {  // TUTORIAL: append this step's k/v at slots start..start+T-1
    cache.k.flat((b * smax + start) * row, T * row).copy_from(s.k.flat(b * T * row, T * row));
    cache.v.flat((b * smax + start) * row, T * row).copy_from(s.v.flat(b * T * row, T * row));
  }
  ensure(*ops_, s.o, s.q.shape());
  ensure(*ops_, s.lse, {B, heads_, T});
  // Slots not written yet have positions > every query position: causality masks them.
  ops_->attention_forward(s.o, s.lse, s.q, cache.k, cache.v, pos, cache.k_pos);
  return output_projection(s, B, T);
}

}  // namespace fivefold::nn
