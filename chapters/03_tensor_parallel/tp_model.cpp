// SPDX-License-Identifier: MIT
// The TP model: decoder layers on shards, the forward/backward, greedy generation.
#include "chapters/03_tensor_parallel/tp_model.hpp"

#include "common/check.hpp"
#include "nn/attention.hpp"
#include "common/trace.hpp"

namespace fivefold::ch03 {

namespace {

std::string layer_prefix(int l) { return "layers." + std::to_string(l) + "."; }

nn::AttentionWeights attention_shards(TpParams& p, int l) {
  const std::string s = layer_prefix(l) + "self_attn.";
  nn::Param &q = p.get(s + "q_proj.weight"), &k = p.get(s + "k_proj.weight");
  nn::Param &v = p.get(s + "v_proj.weight"), &o = p.get(s + "o_proj.weight");
  return {q.value, k.value, v.value, o.value, q.grad, k.grad, v.grad, o.grad};
}

}  // namespace

TpDecoderLayer::TpDecoderLayer(Ops& ops, Communicator& tp, TpParams& params, const ModelConfig& cfg, int l)
    : ops_(&ops),
      label_("layer " + std::to_string(l)),
      norm1_(ops, params.get(layer_prefix(l) + "input_layernorm.weight"), static_cast<float>(cfg.norm_eps)),
      norm2_(ops, params.get(layer_prefix(l) + "post_attention_layernorm.weight"), static_cast<float>(cfg.norm_eps)),
      attn_(ops, tp, cfg, attention_shards(params, l)),
      mlp_(ops, tp, params.get(layer_prefix(l) + "mlp.gate_proj.weight"),
           params.get(layer_prefix(l) + "mlp.up_proj.weight"), params.get(layer_prefix(l) + "mlp.down_proj.weight")) {}

const Tensor& TpDecoderLayer::forward(const Tensor& x, const Tensor& pos, const BlockObserver& seen) {
  TraceSpan span("decoder layer forward", "compute");
  const Tensor& o = attn_.forward(norm1_.forward(x), pos);  // replicated norm, heads split, all-reduce
  nn::ensure(*ops_, h_, x.shape());
  ops_->add(h_, x, o);  // TUTORIAL: the residual stream is replicated: every rank adds the same numbers
  if (seen) seen(label_ + " attention");
  const Tensor& f = mlp_.forward(norm2_.forward(h_));
  nn::ensure(*ops_, y_, x.shape());
  ops_->add(y_, h_, f);
  if (seen) seen(label_ + " mlp");
  return y_;
}

const Tensor& TpDecoderLayer::backward(const Tensor& dy, const BlockObserver& seen) {
  TraceSpan span("decoder layer backward", "compute");
  const Tensor& dm = mlp_.backward(dy);
  nn::ensure(*ops_, dh_, dy.shape());
  ops_->add(dh_, norm2_.backward(dm), dy);  // dm replicated, so the norm gain's gradient is too
  if (seen) seen(label_ + " mlp");
  const Tensor& da = attn_.backward(dh_);
  nn::ensure(*ops_, dx_, dy.shape());
  ops_->add(dx_, norm1_.backward(da), dh_);
  if (seen) seen(label_ + " attention");
  return dx_;
}

const Tensor& TpDecoderLayer::forward_cached(const Tensor& x, std::int64_t start, nn::KvCache& cache) {
  const Tensor& o = attn_.forward_cached(norm1_.forward(x), start, cache);
  nn::ensure(*ops_, h_, x.shape());
  ops_->add(h_, x, o);
  const Tensor& f = mlp_.forward(norm2_.forward(h_));
  nn::ensure(*ops_, y_, x.shape());
  ops_->add(y_, h_, f);
  return y_;
}

TpModel::TpModel(Ops& ops, Communicator& tp, const ModelConfig& cfg)
    : ops_(&ops),
      tp_(&tp),
      cfg_(cfg),
      params_(ops, cfg, tp.rank(), tp.size()),
      embed_(ops, tp, params_.get("embed_tokens.weight")),
      final_norm_(ops, params_.get("norm.weight"), static_cast<float>(cfg.norm_eps)),
      head_(ops, tp, params_.get("lm_head.weight")) {
  for (int l = 0; l < cfg.layers; ++l) layers_.push_back(std::make_unique<TpDecoderLayer>(ops, tp, params_, cfg_, l));
}

const Tensor& TpModel::forward_logits(const Tensor& tokens) {
  FIVEFOLD_CHECK(tokens.ndim() == 2 && tokens.dtype() == DType::i32, "TpModel: tokens ", tokens.str(),
                 " must be int32 [B, T]");
  if (!pos_.defined() || pos_.numel() != tokens.dim(1)) pos_ = nn::positions(*ops_, 0, tokens.dim(1));
  const Tensor* x = &embed_.forward(tokens);  // [B, T, C], replicated
  seen("embedding");
  for (auto& layer : layers_) x = &layer->forward(*x, pos_, seen_);
  return head_.forward(final_norm_.forward(*x));  // [B, T, V/tp]
}

double TpModel::forward(const Tensor& tokens, const Tensor& targets) {
  TraceSpan span("tp forward", "compute");
  forward_logits(tokens);
  const double loss = head_.loss(targets);
  seen("lm head + loss");
  return loss;
}

void TpModel::backward() {
  TraceSpan span("tp backward", "compute");
  const Tensor* dx = &final_norm_.backward(head_.backward());
  seen("lm head");
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) dx = &(*it)->backward(*dx, seen_);
  embed_.backward(*dx);  // no communication: each rank updates only its own vocabulary rows
  seen("embedding");
}

std::vector<std::int32_t> vocab_parallel_argmax(Communicator& tp, Ops& ops, const Tensor& logits, std::int64_t t,
                                                std::int64_t vocab_start) {
  const std::int64_t B = logits.dim(0), T = logits.dim(1), vl = logits.dim(2);
  const std::vector<float> h = logits.to_vector();
  std::vector<float> offer(2 * B);  // per row: (best value, its global id) on this rank
  for (std::int64_t b = 0; b < B; ++b) {
    const float* row = &h[(b * T + t) * vl];
    std::int64_t best = 0;
    for (std::int64_t v = 1; v < vl; ++v)
      if (row[v] > row[best]) best = v;
    offer[2 * b] = row[best];
    offer[2 * b + 1] = static_cast<float>(vocab_start + best);  // exact: ids < 2^24
  }
  Tensor all = ops.empty({tp.size(), 2 * B});
  tp.all_gather(ops.upload(Tensor::from_vector(offer, {2 * B})), all);  // TUTORIAL: 2 floats per row, not V/tp
  const std::vector<float> a = all.to_vector();
  std::vector<std::int32_t> out(B);
  for (std::int64_t b = 0; b < B; ++b) {
    float best = a[2 * b];
    std::int32_t id = static_cast<std::int32_t>(a[2 * b + 1]);
    for (int r = 1; r < tp.size(); ++r) {  // ranks hold increasing ids, so '>' keeps the lower id on ties
      const float v = a[r * 2 * B + 2 * b];
      if (v > best) best = v, id = static_cast<std::int32_t>(a[r * 2 * B + 2 * b + 1]);
    }
    out[b] = id;
  }
  return out;
}

Tensor TpModel::generate(const Tensor& prompt, int new_tokens) {
  FIVEFOLD_CHECK(prompt.ndim() == 2 && prompt.dtype() == DType::i32 && prompt.dim(1) >= 1, "generate: prompt ",
                 prompt.str(), " must be int32 [B, P] with P >= 1");
  const std::int64_t B = prompt.dim(0), P = prompt.dim(1), total = P + new_tokens;
  const int tp = tp_->size();
  const Tensor hp = prompt.to(Device::host);
  std::vector<std::int32_t> seq(B * total, 0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < P; ++t) seq[b * total + t] = hp.at<std::int32_t>(b * P + t);
  std::vector<nn::KvCache> caches;  // TUTORIAL: each rank caches only its Hkv/tp kv heads
  for (int l = 0; l < cfg_.layers; ++l) caches.emplace_back(*ops_, B, total, cfg_.kv_heads / tp, cfg_.head_dim());
  for (std::int64_t cur = P; cur < total; ++cur) {
    const std::int64_t start = cur == P ? 0 : cur - 1, n = cur - start;  // prefill, then one token per step
    std::vector<std::int32_t> in(B * n);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < n; ++t) in[b * n + t] = seq[b * total + start + t];
    const Tensor* x = &embed_.forward(Tensor::from_vector(in, {B, n}));
    for (int l = 0; l < cfg_.layers; ++l) x = &layers_[l]->forward_cached(*x, start, caches[l]);
    const Tensor& logits = head_.forward(final_norm_.forward(*x));  // [B, n, V/tp]
    const std::vector<std::int32_t> next = vocab_parallel_argmax(*tp_, *ops_, logits, n - 1, head_.range().start);
    for (std::int64_t b = 0; b < B; ++b) seq[b * total + cur] = next[b];
    seen("token " + std::to_string(cur - P));
  }
  return Tensor::from_vector(seq, {B, total});
}

}  // namespace fivefold::ch03
