// SPDX-License-Identifier: MIT
// Attention by heads: the reference attention on this rank's heads, wrapped in f and g.
#include "chapters/03_tensor_parallel/tp_attention.hpp"

#include "chapters/03_tensor_parallel/tp_linear.hpp"
#include "common/check.hpp"
#include "nn/layers.hpp"

namespace fivefold::ch03 {

TpAttention::TpAttention(Ops& ops, Communicator& tp, const ModelConfig& cfg, nn::AttentionWeights shards)
    : ops_(&ops),
      tp_(&tp),
      heads_(cfg.heads / tp.size()),
      kv_heads_(cfg.kv_heads / tp.size()) {
  FIVEFOLD_CHECK(cfg.heads % tp.size() == 0 && cfg.kv_heads % tp.size() == 0, "TpAttention: tp ", tp.size(),
                 " must divide heads ", cfg.heads, " and kv heads ", cfg.kv_heads);
  attn_ = std::make_unique<nn::Attention>(ops, std::move(shards), heads_, kv_heads_, cfg.head_dim(),
                                          static_cast<float>(cfg.rope_theta));
}

TpAttention::TpAttention(Ops& ops, Communicator& tp, std::unique_ptr<nn::Attention> heads)
    : ops_(&ops), tp_(&tp), heads_(heads->heads()), kv_heads_(heads->kv_heads()), attn_(std::move(heads)) {}

std::unique_ptr<nn::Acts> TpAttention::new_acts() const {
  auto s = std::make_unique<Saved>();
  s->heads = attn_->new_acts();
  return s;
}

const Tensor& TpAttention::forward(nn::Acts& acts, const Tensor& a, const nn::Pass& pass, nn::KvCache* cache) {
  Saved& s = static_cast<Saved&>(acts);
  // f: a is replicated; each rank projects it onto its own heads (column-parallel q/k/v).
  const Tensor& partial = attn_->forward(*s.heads, a, pass, cache);  // TUTORIAL: this rank's heads through its o_proj columns
  nn::ensure(*ops_, s.y, partial.shape());                          // [B, T, C]
  s.y.copy_from(partial);
  g_forward(*tp_, s.y);  // TUTORIAL: y = sum over ranks of (their heads) o_proj^T
  return s.y;
}

const Tensor& TpAttention::backward_input(nn::Acts& acts, const Tensor& dy) {
  Saved& s = static_cast<Saved&>(acts);
  const Tensor& partial = attn_->backward_input(*s.heads, dy);  // d a through this rank's heads only
  nn::ensure(*ops_, s.da, partial.shape());
  s.da.copy_from(partial);
  f_backward(*tp_, s.da);  // TUTORIAL: every head read all of a: sum the ranks' contributions
  return s.da;
}

void TpAttention::backward_weight(nn::Acts& acts) { attn_->backward_weight(*static_cast<Saved&>(acts).heads); }

const Tensor& TpAttention::forward(const Tensor& a, const Tensor& pos) {
  nn::Pass p;
  p.pos = pos;
  if (!own_) own_ = new_acts();
  return forward(*own_, a, p, nullptr);
}

const Tensor& TpAttention::backward(const Tensor& dy) {
  const Tensor& da = backward_input(*own_, dy);
  backward_weight(*own_);
  return da;
}

}  // namespace fivefold::ch03
