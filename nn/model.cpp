// SPDX-License-Identifier: MIT
// The serial reference model: decoder layers, the whole forward/backward, greedy generation.
#include "nn/model.hpp"

#include "common/check.hpp"

namespace fivefold::nn {

namespace {

std::string layer_prefix(int l) { return "layers." + std::to_string(l) + "."; }

ParamRegistry make_registry(Ops& ops, const ModelConfig& cfg) {
  cfg.validate();
  ParamRegistry reg(ops, cfg.seed);
  reg.add_model(cfg);
  return reg;
}

}  // namespace

DecoderLayer::DecoderLayer(Ops& ops, ParamRegistry& reg, const ModelConfig& cfg, int l)
    : ops_(&ops),
      norm1_(ops, reg.get(layer_prefix(l) + "input_layernorm.weight"), static_cast<float>(cfg.norm_eps)),
      norm2_(ops, reg.get(layer_prefix(l) + "post_attention_layernorm.weight"), static_cast<float>(cfg.norm_eps)),
      attn_(ops, attention_weights(reg, layer_prefix(l) + "self_attn"), cfg.heads, cfg.kv_heads, cfg.head_dim(),
            static_cast<float>(cfg.rope_theta)) {
  if (cfg.is_moe_layer(l)) {
    moe_ = std::make_unique<MoeLayer>(ops, reg, layer_prefix(l) + "moe", cfg.experts, cfg.topk, cfg.capacity_factor,
                                      cfg.aux_coef);
  } else {
    mlp_.emplace(ops, swiglu_weights(reg, layer_prefix(l) + "mlp"));
  }
}

const Tensor& DecoderLayer::mlp_forward(const Tensor& m) { return moe_ ? moe_->forward(m) : mlp_->forward(m); }

const Tensor& DecoderLayer::forward(const Tensor& x, const Tensor& pos) {
  const Tensor& o = attn_.forward(norm1_.forward(x), pos);
  ensure(*ops_, h_, x.shape());
  ops_->add(h_, x, o);  // TUTORIAL: residual stream: x + attn(rmsnorm(x))
  const Tensor& f = mlp_forward(norm2_.forward(h_));
  ensure(*ops_, y_, x.shape());
  ops_->add(y_, h_, f);  // ... + mlp(rmsnorm(.))
  return y_;
}

const Tensor& DecoderLayer::backward(const Tensor& dy) {
  const Tensor& dm = moe_ ? moe_->backward(dy) : mlp_->backward(dy);
  ensure(*ops_, dh_, dy.shape());
  ops_->add(dh_, norm2_.backward(dm), dy);  // the residual passes dy through unchanged
  const Tensor& da = attn_.backward(dh_);
  ensure(*ops_, dx_, dy.shape());
  ops_->add(dx_, norm1_.backward(da), dh_);
  return dx_;
}

const Tensor& DecoderLayer::forward_cached(const Tensor& x, std::int64_t start, KvCache& cache) {
  const Tensor& o = attn_.forward_cached(norm1_.forward(x), start, cache);
  ensure(*ops_, h_, x.shape());
  ops_->add(h_, x, o);
  const Tensor& f = mlp_forward(norm2_.forward(h_));
  ensure(*ops_, y_, x.shape());
  ops_->add(y_, h_, f);
  return y_;
}

Model::Model(Ops& ops, const ModelConfig& cfg)
    : ops_(&ops),
      cfg_(cfg),
      params_(make_registry(ops, cfg)),
      embed_(ops, params_.get("embed_tokens.weight")),
      final_norm_(ops, params_.get("norm.weight"), static_cast<float>(cfg.norm_eps)),
      head_(ops, params_.get("lm_head.weight")) {
  layers_.reserve(cfg.layers);
  for (int l = 0; l < cfg.layers; ++l) layers_.emplace_back(ops, params_, cfg_, l);
}

const Tensor& Model::forward_logits(const Tensor& tokens) {
  FIVEFOLD_CHECK(tokens.ndim() == 2 && tokens.dtype() == DType::i32, "Model: tokens ", tokens.str(),
                 " must be int32 [B, T]");
  tokens_ = ops_->upload(tokens);
  if (!pos_.defined() || pos_.numel() != tokens.dim(1)) pos_ = positions(*ops_, 0, tokens.dim(1));
  const Tensor* x = &embed_.forward(tokens_);  // [B, T, C]
  for (DecoderLayer& layer : layers_) x = &layer.forward(*x, pos_);
  return head_.forward(final_norm_.forward(*x));  // [B, T, V]
}

double Model::forward(const Tensor& tokens, const Tensor& targets) {
  FIVEFOLD_CHECK(targets.shape() == tokens.shape() && targets.dtype() == DType::i32, "Model: targets ",
                 targets.str(), " must be int32 of the tokens' shape ", tokens.str());
  forward_logits(tokens);
  targets_ = ops_->upload(targets);
  ce_loss_ = head_.loss(targets_);
  aux_loss_ = 0.0;
  for (const DecoderLayer& layer : layers_) aux_loss_ += layer.aux_loss();
  return ce_loss_ + aux_loss_;
}

void Model::backward() {
  const Tensor* dx = &final_norm_.backward(head_.backward());
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) dx = &it->backward(*dx);
  embed_.backward(*dx);
}

namespace {

// Argmax over the last dimension of row @p t of logits [B, T, V] for every b (ties -> lower id).
std::vector<std::int32_t> argmax_at(const Tensor& logits, std::int64_t t) {
  const std::int64_t B = logits.dim(0), T = logits.dim(1), V = logits.dim(2);
  const std::vector<float> h = logits.to_vector();
  std::vector<std::int32_t> out(B);
  for (std::int64_t b = 0; b < B; ++b) {
    const float* row = &h[(b * T + t) * V];
    std::int64_t best = 0;
    for (std::int64_t v = 1; v < V; ++v)
      if (row[v] > row[best]) best = v;
    out[b] = static_cast<std::int32_t>(best);
  }
  return out;
}

}  // namespace

Tensor Model::generate(const Tensor& prompt, int new_tokens, bool use_cache) {
  FIVEFOLD_CHECK(prompt.ndim() == 2 && prompt.dtype() == DType::i32 && prompt.dim(1) >= 1, "generate: prompt ",
                 prompt.str(), " must be int32 [B, P] with P >= 1");
  const std::int64_t B = prompt.dim(0), P = prompt.dim(1), total = P + new_tokens;
  for (DecoderLayer& layer : layers_)
    if (layer.moe()) layer.moe()->set_capacity_factor(0.0);
  const Tensor hprompt = prompt.to(Device::host);
  std::vector<std::int32_t> seq(B * total, 0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < P; ++t) seq[b * total + t] = hprompt.at<std::int32_t>(b * P + t);
  std::vector<KvCache> caches;
  if (use_cache)
    for (int l = 0; l < cfg_.layers; ++l) caches.emplace_back(*ops_, B, total, cfg_.kv_heads, cfg_.head_dim());
  for (std::int64_t cur = P; cur < total; ++cur) {
    std::vector<std::int32_t> next;
    if (!use_cache) {  // recompute the whole sequence so far
      std::vector<std::int32_t> in(B * cur);
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t t = 0; t < cur; ++t) in[b * cur + t] = seq[b * total + t];
      next = argmax_at(forward_logits(Tensor::from_vector(in, {B, cur})), cur - 1);
    } else {  // TUTORIAL: prefill the prompt once, then feed one token per step
      const std::int64_t start = cur == P ? 0 : cur - 1, n = cur - start;
      std::vector<std::int32_t> in(B * n);
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t t = 0; t < n; ++t) in[b * n + t] = seq[b * total + start + t];
      tokens_ = ops_->upload(Tensor::from_vector(in, {B, n}));
      const Tensor* x = &embed_.forward(tokens_);
      for (int l = 0; l < cfg_.layers; ++l) x = &layers_[l].forward_cached(*x, start, caches[l]);
      next = argmax_at(head_.forward(final_norm_.forward(*x)), n - 1);
    }
    for (std::int64_t b = 0; b < B; ++b) seq[b * total + cur] = next[b];
  }
  for (DecoderLayer& layer : layers_)
    if (layer.moe()) layer.moe()->set_capacity_factor(cfg_.capacity_factor);
  return Tensor::from_vector(seq, {B, total});
}

}  // namespace fivefold::nn
