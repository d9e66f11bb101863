// SPDX-License-Identifier: MIT
/// @file tp_model.hpp
/// @brief The whole reference model under tensor parallelism: vocab-parallel embedding, L
/// decoder layers (replicated RMSNorms, attention by heads, TP SwiGLU MLP), replicated final
/// norm, vocab-parallel LM head and cross-entropy; training and greedy generation with the KV
/// cache sharded by heads. Equal to nn::Model up to the order of the sums.
///
/// Typical step (same as the serial model):
///   model.zero_grad(); double loss = model.forward(tokens, targets); model.backward(); adamw.step();
/// Communication (all-reduces in the TP group, see tp_costs.hpp): forward 1 + 2L of [B,T,C] and 3
/// of [B*T]; backward 2L + 1 of [B,T,C]. The residual stream and the norms are replicated: every
/// rank holds the same x, so a norm's gradient is the same on every rank without communication.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chapters/03_tensor_parallel/tp_attention.hpp"
#include "chapters/03_tensor_parallel/tp_layout.hpp"
#include "chapters/03_tensor_parallel/tp_linear.hpp"
#include "chapters/03_tensor_parallel/tp_vocab.hpp"
#include "nn/layers.hpp"

namespace fivefold::ch03 {

/// Called after each block of a forward or backward with a label ("embedding", "layer 0
/// attention", "lm head + loss", ...), and after each generated token ("token k"); lets a caller
/// read the counters block by block or token by token.
using BlockObserver = std::function<void(const std::string& label)>;

/// One decoder layer on this rank's shards.
class TpDecoderLayer {
 public:
  /// Layer @p l of @p cfg over this rank's shards in @p params.
  TpDecoderLayer(Ops& ops, Communicator& tp, TpParams& params, const ModelConfig& cfg, int l);
  /// x [B, T, C] -> x' (both replicated); two all-reduces.
  const Tensor& forward(const Tensor& x, const Tensor& pos, const BlockObserver& seen);
  /// dx' -> dx (both replicated); two all-reduces.
  const Tensor& backward(const Tensor& dy, const BlockObserver& seen);
  /// Inference step over this rank's KV cache slice.
  const Tensor& forward_cached(const Tensor& x, std::int64_t start, nn::KvCache& cache);

 private:
  Ops* ops_;
  std::string label_;
  nn::RmsNorm norm1_, norm2_;
  TpAttention attn_;
  TpMlp mlp_;
  Tensor h_, y_, dh_, dx_;
};

/// The model on one rank of a TP group.
class TpModel {
 public:
  /// This rank's shards of @p cfg (dense) over the group @p tp (validate_tp first).
  TpModel(Ops& ops, Communicator& tp, const ModelConfig& cfg);
  /// The configuration.
  const ModelConfig& config() const { return cfg_; }
  /// This rank's shards and their gradients.
  TpParams& params() { return params_; }
  /// The TP group.
  Communicator& group() { return *tp_; }
  /// tokens int32 [B, T] (any device) -> this rank's logits [B, T, V/tp].
  const Tensor& forward_logits(const Tensor& tokens);
  /// Forward and mean cross-entropy against @p targets int32 [B, T]; same value on every rank.
  double forward(const Tensor& tokens, const Tensor& targets);
  /// Backward of the last forward: every shard's gradient accumulates.
  void backward();
  /// Zeroes every gradient.
  void zero_grad() { params_.zero_grad(); }
  /// This rank's logits [B, T, V/tp] of the last forward.
  const Tensor& logits() const { return head_.logits(); }
  /// Greedy generation as nn::Model::generate(prompt, new_tokens, true), with every rank's KV
  /// cache holding only its Hkv/tp heads. Same tokens on every rank, returned on the host.
  Tensor generate(const Tensor& prompt, int new_tokens);
  /// Sets (or clears, with {}) the block observer.
  void set_observer(BlockObserver seen) { seen_ = std::move(seen); }

 private:
  void seen(const std::string& label) const {
    if (seen_) seen_(label);
  }
  Ops* ops_;
  Communicator* tp_;
  ModelConfig cfg_;
  TpParams params_;
  VocabParallelEmbedding embed_;
  std::vector<std::unique_ptr<TpDecoderLayer>> layers_;
  nn::RmsNorm final_norm_;
  VocabParallelLmHead head_;
  Tensor pos_;
  BlockObserver seen_;
};

/// Greedy next token of every row b from the vocab-split logits [B, T, V/tp] at position @p t:
/// each rank offers its best (value, id); one all-gather of 2 floats per row and rank; the
/// largest value wins, ties to the lower id (as nn::Model). Returns B ids on every rank.
std::vector<std::int32_t> vocab_parallel_argmax(Communicator& tp, Ops& ops, const Tensor& logits, std::int64_t t,
                                                std::int64_t vocab_start);

}  // namespace fivefold::ch03
