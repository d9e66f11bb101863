// SPDX-License-Identifier: MIT
// The serial parts, and the decoder layer over any attention and MLP parts (B and W apart).
#include "nn/decoder.hpp"

namespace fivefold::nn {

namespace {

std::string layer_prefix(int l) { return "layers." + std::to_string(l) + "."; }

void tell(const BlockObserver& seen, const std::string& label) {
  if (seen) seen(label);
}

}  // namespace

std::unique_ptr<EmbeddingPart> SerialParts::embedding(ParamRegistry& params) {
  return std::make_unique<Embedding>(*ops_, params.get("embed_tokens.weight"));
}

std::unique_ptr<Block> SerialParts::attention(ParamRegistry& params, int l) {
  return std::make_unique<Attention>(*ops_, attention_weights(params, layer_prefix(l) + "self_attn"), cfg_.heads,
                                     cfg_.kv_heads, cfg_.head_dim(), static_cast<float>(cfg_.rope_theta));
}

std::unique_ptr<Block> SerialParts::mlp(ParamRegistry& params, int l) {
  if (cfg_.is_moe_layer(l))
    return std::make_unique<MoeLayer>(*ops_, params, layer_prefix(l) + "moe", cfg_.experts, cfg_.topk,
                                      cfg_.capacity_factor, cfg_.aux_coef);
  return std::make_unique<SwiGluMlp>(*ops_, swiglu_weights(params, layer_prefix(l) + "mlp"));
}

std::unique_ptr<HeadPart> SerialParts::head(ParamRegistry& params) {
  return std::make_unique<LmHead>(*ops_, params.get("lm_head.weight"));
}

// ---- DecoderLayer

DecoderLayer::DecoderLayer(Ops& ops, ParamRegistry& params, const ModelConfig& cfg, int l, PartFactory& parts)
    : ops_(&ops),
      attn_label_("layer " + std::to_string(l) + " attention"),
      mlp_label_("layer " + std::to_string(l) + " mlp"),
      norm1_(ops, params.get(layer_prefix(l) + "input_layernorm.weight"), static_cast<float>(cfg.norm_eps)),
      norm2_(ops, params.get(layer_prefix(l) + "post_attention_layernorm.weight"), static_cast<float>(cfg.norm_eps)),
      attn_(parts.attention(params, l)),
      mlp_(parts.mlp(params, l)),
      own_(new_acts()) {}

DecoderLayer::DecoderLayer(Ops& ops, ParamRegistry& params, const ModelConfig& cfg, int l)
    : DecoderLayer(ops, params, cfg, l, *std::make_unique<SerialParts>(ops, cfg)) {}

std::unique_ptr<DecoderLayer::Saved> DecoderLayer::new_acts() const {
  auto s = std::make_unique<Saved>();
  s->attn = attn_->new_acts();
  s->mlp = mlp_->new_acts();
  return s;
}

const Tensor& DecoderLayer::forward(Saved& s, const Tensor& x, const Pass& pass, KvCache* cache,
                                    const BlockObserver& seen) {
  const Tensor& o = attn_->forward(*s.attn, norm1_.forward(s.norm1, x), pass, cache);
  ensure(*ops_, s.h, x.shape());
  ops_->add(s.h, x, o);  // TUTORIAL: residual stream: x + attn(rmsnorm(x))
  tell(seen, attn_label_);
  const Tensor& f = mlp_->forward(*s.mlp, norm2_.forward(s.norm2, s.h), pass, nullptr);
  ensure(*ops_, s.y, x.shape());
  ops_->add(s.y, s.h, f);  // ... + mlp(rmsnorm(.))
  tell(seen, mlp_label_);
  return s.y;
}

const Tensor& DecoderLayer::backward_input(Saved& s, const Tensor& dy, const BlockObserver& seen) {
  const Tensor& dm = mlp_->backward_input(*s.mlp, dy);
  ensure(*ops_, s.dh, dy.shape());
  ops_->add(s.dh, norm2_.backward(s.norm2, dm), dy);  // the residual passes dy through unchanged
  tell(seen, mlp_label_);
  const Tensor& da = attn_->backward_input(*s.attn, s.dh);
  ensure(*ops_, s.dx, dy.shape());
  ops_->add(s.dx, norm1_.backward(s.norm1, da), s.dh);
  return s.dx;
}

void DecoderLayer::backward_weight(Saved& s, const BlockObserver& seen) {
  attn_->backward_weight(*s.attn);
  mlp_->backward_weight(*s.mlp);
  tell(seen, attn_label_);  // the layer's last block done: every gradient of the layer is complete
}

const Tensor& DecoderLayer::forward(const Tensor& x, const Tensor& pos) {
  Pass p;
  p.pos = pos;
  return forward(*own_, x, p, nullptr, {});
}

const Tensor& DecoderLayer::backward(const Tensor& dy) {
  const Tensor& dx = backward_input(*own_, dy, {});
  backward_weight(*own_, {});
  return dx;
}

const Tensor& DecoderLayer::forward_cached(const Tensor& x, std::int64_t start, KvCache& cache) {
  Pass p;
  p.start = start;
  return forward(*own_, x, p, &cache, {});
}

}  // namespace fivefold::nn
