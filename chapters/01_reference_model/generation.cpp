// SPDX-License-Identifier: MIT
// Greedy generation with a KV cache and by full recomputation (see generation.hpp).
// Why a cache works: with causal attention, the keys and values of token s never change once
// computed (they depend on tokens 0..s only), so a new token needs only its own q, k, v and the
// cached k, v of the past: O(S) work per token instead of a whole forward of O(S^2).
#include "chapters/01_reference_model/generation.hpp"

#include "common/check.hpp"

namespace fivefold::ch01 {

void cache_attend(Ops& ops, nn::KvCache& cache, Tensor& q, Tensor& k, const Tensor& v, std::int64_t start,
                  float rope_theta, Tensor& out, Tensor& lse) {
  const std::int64_t B = q.dim(0), T = q.dim(1), smax = cache.k.dim(1), row = k.dim(2) * k.dim(3);
  const Tensor pos = nn::positions(ops, start, T);  // int32 [T]: start, ..., start+T-1
  ops.rope(q, pos, rope_theta, false);  // TUTORIAL: a token's rotation is fixed by its absolute position
  ops.rope(k, pos, rope_theta, false);
  for (std::int64_t b = 0; b < B; ++b) {  // TUTORIAL: append: slots start..start+T-1 of sequence b
    cache.k.flat((b * smax + start) * row, T * row).copy_from(k.flat(b * T * row, T * row));
    cache.v.flat((b * smax + start) * row, T * row).copy_from(v.flat(b * T * row, T * row));
  }
  // TUTORIAL: attend over every slot; the unwritten ones sit at positions > start+T-1, which the
  // causal mask (k_pos <= q_pos) hides, so no separate "length" is needed.
  ops.attention_forward(out, lse, q, cache.k, cache.v, pos, cache.k_pos);
}

namespace {

std::string prefix(int l) { return "layers." + std::to_string(l) + "."; }

/// Copies row @p t of logits [B, T, V] into slot @p j of host [B, n, V].
void keep_row(Tensor& dst, const Tensor& logits, std::int64_t t, std::int64_t j) {
  const std::int64_t B = logits.dim(0), T = logits.dim(1), V = logits.dim(2), n = dst.dim(1);
  for (std::int64_t b = 0; b < B; ++b) dst.flat((b * n + j) * V, V).copy_from(logits.flat((b * T + t) * V, V));
}

}  // namespace

KvGenerator::KvGenerator(Ops& ops, nn::ParamRegistry& reg, const ModelConfig& cfg, CacheAttendFn attend)
    : ops_(&ops),
      cfg_(cfg),
      attend_(attend),
      embed_(ops, reg.get("embed_tokens.weight")),
      norm_(ops, reg.get("norm.weight"), static_cast<float>(cfg.norm_eps)),
      head_(ops, reg.get("lm_head.weight")) {
  const float eps = static_cast<float>(cfg.norm_eps);
  layers_.reserve(cfg.layers);
  for (int l = 0; l < cfg.layers; ++l) {
    Layer layer{nn::RmsNorm(ops, reg.get(prefix(l) + "input_layernorm.weight"), eps),
                nn::RmsNorm(ops, reg.get(prefix(l) + "post_attention_layernorm.weight"), eps),
                nn::attention_weights(reg, prefix(l) + "self_attn"), std::nullopt, nullptr, {}, {}, {}, {}, {}, {},
                {}, {}};
    if (cfg.is_moe_layer(l)) {
      layer.moe = std::make_unique<nn::MoeLayer>(ops, reg, prefix(l) + "moe", cfg.experts, cfg.topk, 0.0,
                                                 cfg.aux_coef);
    } else {
      layer.mlp.emplace(ops, nn::swiglu_weights(reg, prefix(l) + "mlp"));
    }
    layers_.push_back(std::move(layer));
  }
}

const Tensor& KvGenerator::layer_step(Layer& L, const Tensor& x, std::int64_t start, nn::KvCache& cache) {
  const std::int64_t B = x.dim(0), T = x.dim(1), H = cfg_.heads, Hkv = cfg_.kv_heads, hd = cfg_.head_dim();
  const Tensor& a = L.norm1.forward(x);  // [B, T, C]
  nn::ensure(*ops_, L.q, {B, T, H, hd});
  nn::ensure(*ops_, L.k, {B, T, Hkv, hd});
  nn::ensure(*ops_, L.v, {B, T, Hkv, hd});
  Tensor q2 = L.q.view({B * T, H * hd}), k2 = L.k.view({B * T, Hkv * hd}), v2 = L.v.view({B * T, Hkv * hd});
  nn::linear_forward(*ops_, q2, a, L.w.q);  // only the new tokens are projected
  nn::linear_forward(*ops_, k2, a, L.w.k);
  nn::linear_forward(*ops_, v2, a, L.w.v);
  nn::ensure(*ops_, L.o, L.q.shape());
  nn::ensure(*ops_, L.lse, {B, H, T});
  attend_(*ops_, cache, L.q, L.k, L.v, start, static_cast<float>(cfg_.rope_theta), L.o, L.lse);
  nn::ensure(*ops_, L.y, x.shape());
  nn::linear_forward(*ops_, L.y, L.o.view({B * T, H * hd}), L.w.o);  // [B, T, C]
  nn::ensure(*ops_, L.h, x.shape());
  ops_->add(L.h, x, L.y);
  const Tensor& m = L.norm2.forward(L.h);
  const Tensor& f = L.moe ? L.moe->forward(m) : L.mlp->forward(m);
  nn::ensure(*ops_, L.out, x.shape());
  ops_->add(L.out, L.h, f);
  return L.out;
}

Tensor KvGenerator::generate(const Tensor& prompt, int new_tokens) {
  FIVEFOLD_CHECK(prompt.ndim() == 2 && prompt.dtype() == DType::i32 && prompt.dim(1) >= 1 && new_tokens >= 0,
                 "KvGenerator: prompt ", prompt.str(), " must be int32 [B, P], P >= 1, and new_tokens ", new_tokens,
                 " >= 0");
  const std::int64_t B = prompt.dim(0), P = prompt.dim(1), total = P + new_tokens, V = cfg_.vocab;
  std::vector<nn::KvCache> caches;  // one per layer: [B, total, Hkv, hd] keys and values
  for (int l = 0; l < cfg_.layers; ++l) caches.emplace_back(*ops_, B, total, cfg_.kv_heads, cfg_.head_dim());
  cache_bytes_ = static_cast<std::int64_t>(cfg_.layers) * (caches.front().k.nbytes() + caches.front().v.nbytes());
  std::vector<std::int32_t> seq = prompt.to(Device::host).to_ivector(), out(static_cast<std::size_t>(B * total));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < P; ++t) out[b * total + t] = seq[b * P + t];
  step_logits_ = Tensor::zeros({B, new_tokens, V});
  for (std::int64_t cur = P; cur < total; ++cur) {
    // TUTORIAL: the first step (prefill) feeds the whole prompt; later steps feed one token.
    const std::int64_t start = cur == P ? 0 : cur - 1, n = cur - start;
    std::vector<std::int32_t> in(static_cast<std::size_t>(B * n));
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < n; ++t) in[b * n + t] = out[b * total + start + t];
    const Tensor tokens = ops_->upload(Tensor::from_vector(in, {B, n}));
    const Tensor* x = &embed_.forward(tokens);  // [B, n, C]
    for (int l = 0; l < cfg_.layers; ++l) x = &layer_step(layers_[l], *x, start, caches[l]);
    const Tensor& logits = head_.forward(norm_.forward(*x));  // [B, n, V]
    keep_row(step_logits_, logits, n - 1, cur - P);
    const std::vector<std::int32_t> next = argmax_at(logits, n - 1);
    for (std::int64_t b = 0; b < B; ++b) out[b * total + cur] = next[b];
  }
  return Tensor::from_vector(out, {B, total});
}

Tensor generate_full(TracedModel& model, const Tensor& prompt, int new_tokens, Tensor* step_logits) {
  const std::int64_t B = prompt.dim(0), P = prompt.dim(1), total = P + new_tokens, V = model.config().vocab;
  std::vector<std::int32_t> seq = prompt.to(Device::host).to_ivector(), out(static_cast<std::size_t>(B * total));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < P; ++t) out[b * total + t] = seq[b * P + t];
  if (step_logits) *step_logits = Tensor::zeros({B, new_tokens, V});
  model.set_capacity_factor(0.0);  // dropless, like the cached path
  for (std::int64_t cur = P; cur < total; ++cur) {
    std::vector<std::int32_t> in(static_cast<std::size_t>(B * cur));
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < cur; ++t) in[b * cur + t] = out[b * total + t];
    const Tensor& logits = model.forward_logits(Tensor::from_vector(in, {B, cur}));  // [B, cur, V]: all of it again
    if (step_logits) keep_row(*step_logits, logits, cur - 1, cur - P);
    const std::vector<std::int32_t> next = argmax_at(logits, cur - 1);
    for (std::int64_t b = 0; b < B; ++b) out[b * total + cur] = next[b];
  }
  model.set_capacity_factor(model.config().capacity_factor);
  return Tensor::from_vector(out, {B, total});
}

}  // namespace fivefold::ch01
