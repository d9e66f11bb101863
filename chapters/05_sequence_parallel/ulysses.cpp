// SPDX-License-Identifier: MIT
// Ulysses: the core of the attention on H/sp heads over the whole sequence, all-to-alls around it.
#include "chapters/05_sequence_parallel/ulysses.hpp"

#include <algorithm>

#include "chapters/05_sequence_parallel/sp_layout.hpp"
#include "common/check.hpp"
#include "nn/layers.hpp"

namespace fivefold::ch05 {

UlyssesAttention::UlyssesAttention(Ops& ops, Communicator& sp, const ModelConfig& cfg, nn::AttentionWeights w,
                                   Tensor all_pos, RowMaps& maps, SeqBuffers& buf)
    : nn::Attention(ops, std::move(w), cfg.heads, cfg.kv_heads, cfg.head_dim(), static_cast<float>(cfg.rope_theta)),
      sp_(&sp),
      maps_(&maps),
      buf_(&buf),
      all_pos_(std::move(all_pos)),
      h_local_(cfg.heads / sp.size()),
      kv_local_(std::max(1, cfg.kv_heads / sp.size())) {
  const int n = sp.size();
  FIVEFOLD_CHECK(cfg.heads % n == 0 && (cfg.kv_heads % n == 0 || n % cfg.kv_heads == 0), "Ulysses over ", n,
                 " ranks needs heads ", cfg.heads, " and kv heads ", cfg.kv_heads, " to split (see check_layout)");
  for (int j = 0; j < n; ++j) {
    q_blocks_.push_back(j);  // rank j: query heads j*H/sp ..
    kv_blocks_.push_back(ulysses_kv_heads(cfg.kv_heads, n, j).first / kv_local_);  // ... and the kv heads they read
  }
}

std::int64_t UlyssesAttention::bytes_per_layer(const ModelConfig& cfg, int sp, std::int64_t b, std::int64_t T) {
  return b * (T / sp) * cfg.head_dim() * (2 * cfg.heads + 2 * std::max(cfg.kv_heads, sp)) * 4;
}

void UlyssesAttention::attend(nn::Attention::Saved& base) {
  Saved& s = static_cast<Saved&>(base);
  // TUTORIAL: q, k, v: my T/sp positions of every head -> every position of my heads
  seq_to_heads(*sp_, *ops_, *maps_, s.q, s.qh, h_local_, q_blocks_, *buf_);
  seq_to_heads(*sp_, *ops_, *maps_, s.k, s.kh, kv_local_, kv_blocks_, *buf_);
  seq_to_heads(*sp_, *ops_, *maps_, s.v, s.vh, kv_local_, kv_blocks_, *buf_);
  const std::int64_t B = s.qh.dim(0), T = s.qh.dim(1);
  nn::ensure(*ops_, s.oh, s.qh.shape());
  nn::ensure(*ops_, s.lseh, {B, h_local_, T});
  // TUTORIAL: the ordinary causal attention: these heads see the whole sequence
  ops_->attention_forward(s.oh, s.lseh, s.qh, s.kh, s.vh, all_pos_, all_pos_);
  nn::ensure(*ops_, s.o, s.q.shape());
  ops_->fill(s.o, 0.0f);
  heads_to_seq(*sp_, *ops_, *maps_, s.oh, s.o, h_local_, q_blocks_, *buf_);  // back: my positions, every head
}

void UlyssesAttention::attend_backward(nn::Attention::Saved& base) {
  Saved& s = static_cast<Saved&>(base);
  seq_to_heads(*sp_, *ops_, *maps_, s.d_o, s.d_oh, h_local_, q_blocks_, *buf_);
  for (Tensor* t : {&s.dqh, &s.dkh, &s.dvh}) {
    const Tensor& like = t == &s.dqh ? s.qh : s.kh;
    nn::ensure(*ops_, *t, like.shape());
    ops_->fill(*t, 0.0f);  // attention_backward accumulates
  }
  ops_->attention_backward(s.dqh, s.dkh, s.dvh, s.d_oh, s.qh, s.kh, s.vh, s.oh, s.lseh, all_pos_, all_pos_);
  for (Tensor* t : {&s.dq, &s.dk, &s.dv}) {
    nn::ensure(*ops_, *t, t == &s.dq ? s.q.shape() : s.k.shape());
    ops_->fill(*t, 0.0f);
  }
  heads_to_seq(*sp_, *ops_, *maps_, s.dqh, s.dq, h_local_, q_blocks_, *buf_);
  heads_to_seq(*sp_, *ops_, *maps_, s.dkh, s.dk, kv_local_, kv_blocks_, *buf_);  // TUTORIAL: replicas' dK summed
  heads_to_seq(*sp_, *ops_, *maps_, s.dvh, s.dv, kv_local_, kv_blocks_, *buf_);
}

}  // namespace fivefold::ch05
