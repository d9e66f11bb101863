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
#include "nn/parts.hpp"

namespace fivefold::ch03 {

/// This rank's first token id and vocabulary slice size for a [V/tp, C] shard.
struct VocabRange {
  std::int64_t start = 0;  ///< v0 = rank * V/tp
  std::int64_t size = 0;   ///< V/tp
};

/// Token embedding split by vocabulary rows.
class VocabParallelEmbedding : public nn::EmbeddingPart {
 public:
  /// What one pass keeps.
  struct Saved : nn::Acts {
    Tensor index;  ///< local row of each token (0 when not owned)
    Tensor mask;  ///< 1/0 owned
    Tensor y;  ///< output
  };
  /// Over this rank's shard @p w [V/tp, C] of embed_tokens.weight. With @p reduce false the
  /// forward leaves this rank's partial lookup un-summed (sequence parallelism reduce-scatters it).
  VocabParallelEmbedding(Ops& ops, Communicator& tp, nn::Param& w, bool reduce = true);
  std::unique_ptr<nn::Acts> new_acts() const override { return std::make_unique<Saved>(); }
  /// pass.tokens int32 [B, T] (any device) -> x [B, T, C], replicated (one all-reduce).
  const Tensor& forward(nn::Acts& a, const nn::Pass& pass) override;
  /// W: dx [B, T, C] (replicated): this rank's rows of the gradient accumulate. No communication.
  void backward_weight(nn::Acts& a, const Tensor& dx) override;
  /// One pass in flight (the part's own Saved): tokens -> x.
  const Tensor& forward(const Tensor& tokens);
  /// Backward of forward(tokens).
  void backward(const Tensor& dx) { backward_weight(own_, dx); }
  /// The ids this rank owns.
  VocabRange range() const { return range_; }

 private:
  Ops* ops_;
  Communicator* tp_;
  Tensor w_, dw_;
  VocabRange range_;
  bool reduce_;
  Saved own_;
};

/// The LM head split by vocabulary rows, with the vocab-parallel mean cross-entropy.
class VocabParallelLmHead : public nn::HeadPart {
 public:
  /// What one pass keeps.
  struct Saved : nn::Acts {
    Tensor h;  ///< input (handle)
    Tensor logits;  ///< this rank's logits
    Tensor dlogits;  ///< their gradient
    Tensor probs;  ///< softmax
    Tensor dh;  ///< dh
    Tensor local_target;  ///< the target's column on this rank (0 if not owned)
    Tensor flat_target;  ///< ... as a flat index into the logits
    Tensor owned;  ///< 1 where this rank owns the target
    Tensor row_loss;  ///< local lse - logit per row
    Tensor z_any;  ///< logit at the local target column
    Tensor row_ids;  ///< 0..N-1
    Tensor ones;  ///< ones [N, 1]
    Tensor scale;  ///< per-row rescaling of the local softmax
    Tensor minus;  ///< the one-hot's -1/N
  };
  /// Over this rank's shard @p w [V/tp, C] of lm_head.weight. With @p reduce false the
  /// backward leaves this rank's partial dh un-summed (sequence parallelism reduce-scatters it).
  VocabParallelLmHead(Ops& ops, Communicator& tp, nn::Param& w, bool reduce = true);
  std::unique_ptr<nn::Acts> new_acts() const override { return std::make_unique<Saved>(); }
  /// h [B, T, C] (replicated) -> this rank's logits [B, T, V/tp]. No communication (f).
  const Tensor& forward(nn::Acts& a, const Tensor& h) override;
  /// Mean cross-entropy of the last logits against pass.targets int32 [B, T] (any device):
  /// three all-reduces of N = B*T floats. Stores this rank's dlogits [B, T, V/tp] (scaled by
  /// pass.loss_scale, or 1/N when 0).
  double loss(nn::Acts& a, const nn::Pass& pass) override;
  /// B: dh [B, T, C] (replicated; one all-reduce).
  const Tensor& backward_input(nn::Acts& a) override;
  /// W: this rank's lm_head rows accumulate. No communication.
  void backward_weight(nn::Acts& a) override;
  const Tensor& logits(const nn::Acts& a) const override { return static_cast<const Saved&>(a).logits; }
  /// vocab_parallel_argmax over this rank's slice.
  std::vector<std::int32_t> argmax(const Tensor& logits, std::int64_t t) override;
  /// One pass in flight (the part's own Saved): h -> this rank's logits.
  const Tensor& forward(const Tensor& h) { return forward(own_, h); }
  /// loss() of forward(h) against @p targets.
  double loss(const Tensor& targets);
  /// B and W of forward(h): dh.
  const Tensor& backward();
  /// This rank's logits of the last forward(h), [B, T, V/tp].
  const Tensor& logits() const { return own_.logits; }
  /// This rank's d loss / d logits of the last loss(targets), [B, T, V/tp].
  const Tensor& dlogits() const { return own_.dlogits; }
  /// The ids this rank owns.
  VocabRange range() const { return range_; }

 private:
  Ops* ops_;
  Communicator* tp_;
  Tensor w_, dw_;
  VocabRange range_;
  bool reduce_;
  Saved own_;
};

/// Greedy next token of every row b from the vocab-split logits [B, T, V/tp] at position @p t:
/// each rank offers its best (value, id); one all-gather of 2 floats per row and rank; the
/// largest value wins, ties to the lower id (as nn::Model). Returns B ids on every rank.
std::vector<std::int32_t> vocab_parallel_argmax(Communicator& tp, Ops& ops, const Tensor& logits, std::int64_t t,
                                                std::int64_t vocab_start);

}  // namespace fivefold::ch03
