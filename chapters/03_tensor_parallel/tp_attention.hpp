// SPDX-License-Identifier: MIT
/// @file tp_attention.hpp
/// @brief Attention split by heads: rank r of the TP group owns H/tp query heads and Hkv/tp
/// key/value heads (their q/k/v projection rows: column-parallel), their RoPE, causal softmax and
/// KV cache, and the matching columns of o_proj (row-parallel).
///
/// Heads never talk to each other until o_proj, so the only communication is f before the block
/// (backward: sum of the partial da) and g after it (forward: sum of the partial outputs), exactly
/// as in the MLP. GQA: query head h reads kv head h / (H/Hkv); rank r's query heads
/// r*H/tp .. (r+1)*H/tp-1 read kv heads r*Hkv/tp .. (r+1)*Hkv/tp-1, which are rank r's own, so
/// the grouping survives the split whenever tp divides Hkv. The per-head work is the reference
/// nn::Attention run on the shards (it takes its head counts as arguments for this reason).
/// Leaves out: tp > Hkv (Megatron then replicates kv heads), sequence parallelism (chapter 05).
#pragma once

#include <memory>

#include "backends/communicator.hpp"
#include "common/model_config.hpp"
#include "nn/attention.hpp"

namespace fivefold::ch03 {

/// One attention block on this rank's heads.
class TpAttention : public nn::Block {
 public:
  /// What one pass keeps.
  struct Saved : nn::Acts {
    std::unique_ptr<nn::Acts> heads;  ///< the attention's on this rank's heads (its core's Saved)
    Tensor y;  ///< the output, all-reduced
    Tensor da;  ///< the input gradient, all-reduced
  };
  /// Over the shards q [H/tp*hd, C], k, v [Hkv/tp*hd, C], o [C, H/tp*hd] (value and grad handles)
  /// of a model @p cfg split over @p tp.
  TpAttention(Ops& ops, Communicator& tp, const ModelConfig& cfg, nn::AttentionWeights shards);
  /// Over @p heads, the attention of this rank's H/tp query and Hkv/tp kv heads (any core: e.g.
  /// chapter 05's ring attention, when the sequence is split over another group too).
  TpAttention(Ops& ops, Communicator& tp, std::unique_ptr<nn::Attention> heads);
  std::unique_ptr<nn::Acts> new_acts() const override;
  /// a [B, T, C] (replicated), pass.pos int32 [T] -> y [B, T, C] (replicated; one all-reduce).
  /// With @p cache (generation: this rank's slice [B, S_max, Hkv/tp, hd]) as nn::Attention.
  const Tensor& forward(nn::Acts& s, const Tensor& a, const nn::Pass& pass, nn::KvCache* cache) override;
  /// B: dy [B, T, C] (replicated) -> da [B, T, C] (replicated; one all-reduce).
  const Tensor& backward_input(nn::Acts& s, const Tensor& dy) override;
  /// W: this rank's four shard gradients accumulate. No communication.
  void backward_weight(nn::Acts& s) override;
  /// One pass in flight (the block's own Saved): a, pos -> y.
  const Tensor& forward(const Tensor& a, const Tensor& pos);
  /// B and W of forward(a, pos).
  const Tensor& backward(const Tensor& dy);
  /// Query heads on this rank.
  int local_heads() const { return heads_; }
  /// Key/value heads on this rank.
  int local_kv_heads() const { return kv_heads_; }

 private:
  Ops* ops_;
  Communicator* tp_;
  int heads_, kv_heads_;
  std::unique_ptr<nn::Attention> attn_;
  std::unique_ptr<nn::Acts> own_;
};

}  // namespace fivefold::ch03
