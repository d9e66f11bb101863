// SPDX-License-Identifier: MIT
/// @file parts.hpp
/// @brief The interfaces a layout plugs into the one decoder (decoder.hpp): an embedding part,
/// the blocks of a decoder layer (attention, MLP) and a head part, each with its activations kept
/// OUTSIDE the part, in an Acts object per (chunk, microbatch), and with its backward split into
/// the input gradient (B) and the weight gradient (W).
///
/// Why the activations live outside: a pipeline stage runs the forward of several microbatches
/// before their backwards, so one part serves several passes in flight; each pass brings its own
/// Acts (made by new_acts()). Why B and W apart: zero-bubble schedules run W later, to fill idle
/// time; a plain backward calls them back to back. Both orders give the same numbers: B writes
/// the input gradient and keeps the output gradient, W ACCUMULATES the weight gradients of the
/// matmuls (the RMSNorm gains, which come out of the same op as their input gradient, accumulate
/// in B).
///
/// Implementations: serial (nn::Embedding, nn::Attention, nn::SwiGluMlp, nn::MoeLayer,
/// nn::LmHead), tensor-parallel (chapter 03: by heads, column/row MLP, vocabulary-parallel
/// embedding and head). A later layout adds its own part (Ulysses or ring attention, an
/// expert-parallel MoE) and a PartFactory that picks it; the decoder does not change.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/tensor.hpp"

namespace fivefold::nn {

class ParamRegistry;
struct KvCache;

/// What a part saves in its forward for its backward (and the buffers of its outputs). Each part
/// defines its own derived struct; the decoder only creates, holds and hands them back.
struct Acts {
  virtual ~Acts() = default;
};

/// The forward context of one pass (one microbatch through one chunk).
struct Pass {
  Tensor tokens;   ///< int32 [b, T_l] on the device (used by the embedding)
  Tensor targets;  ///< int32 [b, T_l] on the device (used by the head's loss)
  /// int32 [T_l]: the GLOBAL position of every local token (RoPE, the causal mask). When the
  /// sequence is split (chapter 05) a rank's tokens are not 0..T_l-1.
  Tensor pos;
  /// d loss / d (one token's cross-entropy): 1/(global B*T) when a step is cut into several
  /// microbatches or ranks; 0 means 1/(this pass's b*T_l), the mean over the pass itself.
  double loss_scale = 0.0;
  /// Weight of this pass's aux loss (a mean over its b sequences) in the step's: b/B when the
  /// step is cut, 1 otherwise. Scales the aux-loss gradient inside the MoE part, so a pipeline
  /// stage without the head still gets it.
  double aux_scale = 1.0;
  /// Generation: one cache per layer of the chunk (empty in training). With a cache the
  /// attention appends this pass's keys/values and attends over the cache; no backward.
  std::vector<KvCache>* caches = nullptr;
  /// Generation: the position of the pass's first token (its tokens are start..start+T_l-1).
  std::int64_t start = 0;
  /// Route every token (no expert capacity): generation, where a per-sequence capacity would
  /// depend on how long the sequence has grown. Every MoE part honours it.
  bool dropless = false;
};

/// A block of a decoder layer, [b, T_l, C] -> [b, T_l, C]: attention, or an MLP (dense, MoE).
class Block {
 public:
  virtual ~Block() = default;
  /// Fresh activations for one pass.
  virtual std::unique_ptr<Acts> new_acts() const = 0;
  /// x -> y (a buffer in @p a), saving in @p a what the backward needs. @p cache: this layer's
  /// KV cache during generation (nullptr in training; blocks without one ignore it).
  virtual const Tensor& forward(Acts& a, const Tensor& x, const Pass& pass, KvCache* cache) = 0;
  /// B: dy -> dx (a buffer in @p a); keeps what W needs. Any communication of the block's input
  /// gradient (tensor parallelism) happens here.
  virtual const Tensor& backward_input(Acts& a, const Tensor& dy) = 0;
  /// W: the weight gradients of the last backward_input on @p a ACCUMULATE.
  virtual void backward_weight(Acts& a) = 0;
  /// The aux loss of the forward on @p a (MoE; 0 otherwise).
  virtual double aux_loss(const Acts& a) const {
    (void)a;
    return 0.0;
  }
};

/// The token embedding: tokens -> x [b, T_l, C]. It has no input gradient, only W.
class EmbeddingPart {
 public:
  virtual ~EmbeddingPart() = default;
  /// Fresh activations for one pass.
  virtual std::unique_ptr<Acts> new_acts() const = 0;
  /// pass.tokens -> x (a buffer in @p a).
  virtual const Tensor& forward(Acts& a, const Pass& pass) = 0;
  /// W: dx -> the table's gradient accumulates.
  virtual void backward_weight(Acts& a, const Tensor& dx) = 0;
};

/// The output projection and the cross-entropy: h -> logits, loss; backward dh.
class HeadPart {
 public:
  virtual ~HeadPart() = default;
  /// Fresh activations for one pass.
  virtual std::unique_ptr<Acts> new_acts() const = 0;
  /// h [b, T_l, C] -> the logits this rank holds (a buffer in @p a).
  virtual const Tensor& forward(Acts& a, const Tensor& h) = 0;
  /// Mean cross-entropy over the pass's tokens against pass.targets; stores d loss / d logits
  /// scaled by pass.loss_scale (or 1/tokens when 0).
  virtual double loss(Acts& a, const Pass& pass) = 0;
  /// B: -> dh [b, T_l, C].
  virtual const Tensor& backward_input(Acts& a) = 0;
  /// W: the head's weight gradient accumulates.
  virtual void backward_weight(Acts& a) = 0;
  /// The logits of the last forward on @p a.
  virtual const Tensor& logits(const Acts& a) const = 0;
  /// Greedy next token of every row b of @p logits [b, T_l, V or V/tp] at position @p t (ties to
  /// the lower id); the same ids on every rank that holds a slice of the vocabulary.
  virtual std::vector<std::int32_t> argmax(const Tensor& logits, std::int64_t t) = 0;
};

/// Picks the parts of a layout over its parameters (full tensors, or this rank's shards).
class PartFactory {
 public:
  virtual ~PartFactory() = default;
  /// The embedding, over "embed_tokens.weight".
  virtual std::unique_ptr<EmbeddingPart> embedding(ParamRegistry& params) = 0;
  /// Layer @p l's attention, over "layers.l.self_attn.*".
  virtual std::unique_ptr<Block> attention(ParamRegistry& params, int l) = 0;
  /// Layer @p l's MLP (dense "layers.l.mlp.*" or MoE "layers.l.moe.*").
  virtual std::unique_ptr<Block> mlp(ParamRegistry& params, int l) = 0;
  /// The LM head, over "lm_head.weight" (with its cross-entropy).
  virtual std::unique_ptr<HeadPart> head(ParamRegistry& params) = 0;
};

/// Callbacks around each unit of the model (each may be empty); the argument is the unit index:
/// 0 the embedding, 1 + l decoder layer l, L + 1 the head (final norm + lm_head + loss).
/// Data parallelism plugs in here: a ZeRO-3 gather before a unit runs, a bucket's all-reduce
/// or a reduce-scatter once the unit's gradients are complete.
struct UnitHooks {
  std::function<void(int)> before_forward;   ///< the unit's parameters must be in place after this
  std::function<void(int)> after_forward;    ///< the unit's parameters may be released
  std::function<void(int)> before_backward;  ///< parameters (and zeroed grads) in place after this
  /// The unit's gradients are complete: called after its W, so a zero-bubble schedule that
  /// defers W also defers this (and so any gradient synchronisation of the unit).
  std::function<void(int)> after_backward;
};

}  // namespace fivefold::nn
