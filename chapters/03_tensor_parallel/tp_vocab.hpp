// SPDX-License-Identifier: MIT
/// @file tp_vocab.hpp
/// @brief The vocabulary split over the TP group: the vocab-parallel embedding (masked lookup +
/// all-reduce) and the vocab-parallel LM head with its cross-entropy, which never gathers the
/// full [N, V] logits.
///
/// Rank r owns token ids v0 = r*V/tp .. v0 + V/tp - 1: rows of embed_tokens and of lm_head.
/// - Embedding: a token outside the range contributes a zero row; the all-reduce then gives every
///   rank the full embedding (each token is owned by exactly one rank). Backward: each rank
///   scatter-adds the (replicated) gradient into its own rows only; no communication.
/// - Cross-entropy over logits split by columns, for each of the N rows:
///     loss = log sum_v exp(l_v) - l_target = lse - z.
///   Each rank computes its local log-sum-exp lse_r (the cross-entropy op does it stably with its
///   own row max); then three all-reduces of N numbers each:
///     M = max_r lse_r                        (all-reduce max: the stabiliser)
///     S = sum_r exp(lse_r - M)               (all-reduce sum of the exponentials)
///     z = sum_r (l_target if owned, else 0)  (all-reduce sum of the target logit)
///   lse = M + log S. The gradient needs no more communication:
///     dl_v = (softmax_v - [v == target]) / N = (p_r,v * exp(lse_r - lse) - [v == target]) / N,
///   where p_r is the local softmax. Backward of the head: dh = sum_r dl_r W_r (one all-reduce).
/// Communication per step: 3 all-reduces of 4N bytes instead of an all-gather of 4*N*V bytes.
/// Leaves out: padding V to a multiple of tp (we reject instead), tied embeddings.
#pragma once

#include "backends/communicator.hpp"
#include "backends/ops.hpp"
#include "nn/params.hpp"

namespace fivefold::ch03 {

/// This rank's first token id and vocabulary slice size for a [V/tp, C] shard.
struct VocabRange {
  std::int64_t start = 0;  ///< v0 = rank * V/tp
  std::int64_t size = 0;   ///< V/tp
};

/// Token embedding split by vocabulary rows.
class VocabParallelEmbedding {
 public:
  /// Over this rank's shard @p w [V/tp, C] of embed_tokens.weight.
  VocabParallelEmbedding(Ops& ops, Communicator& tp, nn::Param& w);
  /// tokens int32 [B, T] (any device) -> x [B, T, C], replicated (one all-reduce).
  const Tensor& forward(const Tensor& tokens);
  /// dx [B, T, C] (replicated): this rank's rows of the gradient accumulate. No communication.
  void backward(const Tensor& dx);
  /// The ids this rank owns.
  VocabRange range() const { return range_; }

 private:
  Ops* ops_;
  Communicator* tp_;
  Tensor w_, dw_, index_, mask_, y_;
  VocabRange range_;
};

/// The LM head split by vocabulary rows, with the vocab-parallel mean cross-entropy.
class VocabParallelLmHead {
 public:
  /// Over this rank's shard @p w [V/tp, C] of lm_head.weight.
  VocabParallelLmHead(Ops& ops, Communicator& tp, nn::Param& w);
  /// h [B, T, C] (replicated) -> this rank's logits [B, T, V/tp]. No communication (f).
  const Tensor& forward(const Tensor& h);
  /// Mean cross-entropy of the last logits against @p targets int32 [B, T] (any device): three
  /// all-reduces of N = B*T floats. Stores this rank's dlogits [B, T, V/tp].
  double loss(const Tensor& targets);
  /// dh [B, T, C] (replicated; one all-reduce); this rank's lm_head rows accumulate.
  const Tensor& backward();
  /// This rank's logits of the last forward, [B, T, V/tp].
  const Tensor& logits() const { return logits_; }
  /// This rank's d loss / d logits of the last loss(), [B, T, V/tp].
  const Tensor& dlogits() const { return dlogits_; }
  /// The ids this rank owns.
  VocabRange range() const { return range_; }

 private:
  Ops* ops_;
  Communicator* tp_;
  Tensor w_, dw_, h_, logits_, dlogits_, probs_, dh_;
  Tensor local_target_, flat_target_, owned_, row_loss_, z_any_, row_ids_, ones_, scale_, minus_;
  VocabRange range_;
};

}  // namespace fivefold::ch03
