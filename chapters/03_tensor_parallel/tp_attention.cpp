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
      kv_heads_(cfg.kv_heads / tp.size()),
      attn_(ops, std::move(shards), heads_, kv_heads_, cfg.head_dim(), static_cast<float>(cfg.rope_theta)) {
  FIVEFOLD_CHECK(cfg.heads % tp.size() == 0 && cfg.kv_heads % tp.size() == 0, "TpAttention: tp ", tp.size(),
                 " must divide heads ", cfg.heads, " and kv heads ", cfg.kv_heads);
}

const Tensor& TpAttention::forward(const Tensor& a, const Tensor& pos) {
  // f: a is replicated; each rank projects it onto its own heads (column-parallel q/k/v).
  const Tensor& partial = attn_.forward(a, pos);  // TUTORIAL: this rank's heads through its o_proj columns
  nn::ensure(*ops_, y_, partial.shape());         // [B, T, C]
  y_.copy_from(partial);
  g_forward(*tp_, y_);  // TUTORIAL: y = sum over ranks of (their heads) o_proj^T
  return y_;
}

const Tensor& TpAttention::backward(const Tensor& dy) {
  const Tensor& partial = attn_.backward(dy);  // d a through this rank's heads only
  nn::ensure(*ops_, da_, partial.shape());
  da_.copy_from(partial);
  f_backward(*tp_, da_);  // TUTORIAL: every head read all of a: sum the ranks' contributions
  return da_;
}

const Tensor& TpAttention::forward_cached(const Tensor& a, std::int64_t start, nn::KvCache& cache) {
  const Tensor& partial = attn_.forward_cached(a, start, cache);  // cache holds this rank's kv heads only
  nn::ensure(*ops_, y_, partial.shape());
  y_.copy_from(partial);
  g_forward(*tp_, y_);
  return y_;
}

}  // namespace fivefold::ch03
