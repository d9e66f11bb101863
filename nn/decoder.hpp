// SPDX-License-Identifier: MIT
/// @file decoder.hpp
/// @brief The one decoder every layout plugs into: decoder layers over any attention and MLP
/// parts, cut into chunks of consecutive layers, run pass by pass with the activations of each
/// (chunk, microbatch) in a ChunkActs context, the backward split into B and W, and hooks around
/// every unit.
///
/// A layout is a choice of parts (a PartFactory: serial, tensor-parallel, ...), of which layers
/// a rank holds (its chunks: the whole model, one pipeline stage, or v interleaved stages) and of
/// what runs around the units (UnitHooks: the data-parallel synchronisers). nn::Model is the
/// serial configuration, chapter 02's UnitModel the serial one over flat storage with hooks,
/// chapter 03's TpModel the tensor-parallel one; none has a forward or backward of its own.
///
/// Units (the granularity of hooks, ZeRO gathers and gradient buckets): 0 the embedding, 1 + l
/// decoder layer l, L + 1 the head (final norm, lm_head, loss). A chunk of layers [first, last)
/// holds units 1+first .. last, plus unit 0 when first == 0 and unit L+1 when last == L.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backends/ops.hpp"
#include "common/model_config.hpp"
#include "nn/attention.hpp"
#include "nn/layers.hpp"
#include "nn/moe.hpp"
#include "nn/params.hpp"
#include "nn/parts.hpp"

namespace fivefold::nn {

/// Called after each block of a forward or backward with a label ("embedding", "layer 0
/// attention", "layer 0 mlp", "lm head + loss" in the forward; in the backward "lm head" after
/// the head's B and W, "layer l mlp" after the MLP's B, "layer l attention" after the layer's W
/// (its gradients complete), "embedding" after its W), and after each generated token ("token
/// k"): lets a caller read the communication counters block by block (W communicates nothing).
using BlockObserver = std::function<void(const std::string& label)>;

/// The serial parts: every weight whole on this rank.
class SerialParts : public PartFactory {
 public:
  /// Parts of the model @p cfg.
  explicit SerialParts(Ops& ops, const ModelConfig& cfg) : ops_(&ops), cfg_(cfg) {}
  std::unique_ptr<EmbeddingPart> embedding(ParamRegistry& params) override;
  std::unique_ptr<Block> attention(ParamRegistry& params, int l) override;
  std::unique_ptr<Block> mlp(ParamRegistry& params, int l) override;
  std::unique_ptr<HeadPart> head(ParamRegistry& params) override;

 private:
  Ops* ops_;
  ModelConfig cfg_;
};

/// One decoder layer: x + attn(rmsnorm(x)), then + mlp(rmsnorm(.)), over any attention and MLP.
class DecoderLayer {
 public:
  /// What one pass keeps.
  struct Saved {
    RmsNorm::Saved norm1;  ///< input_layernorm
    RmsNorm::Saved norm2;  ///< post_attention_layernorm
    std::unique_ptr<Acts> attn;  ///< the attention's
    std::unique_ptr<Acts> mlp;  ///< the MLP's
    Tensor h;  ///< x + attention: the residual after the first block
    Tensor y;  ///< the layer's output
    Tensor dh;  ///< gradient of h
    Tensor dx;  ///< the layer's input gradient
  };
  /// Layer @p l of @p cfg with the parts @p parts picks over @p params.
  DecoderLayer(Ops& ops, ParamRegistry& params, const ModelConfig& cfg, int l, PartFactory& parts);
  /// The serial layer @p l (SerialParts).
  DecoderLayer(Ops& ops, ParamRegistry& params, const ModelConfig& cfg, int l);
  /// Fresh activations for one pass.
  std::unique_ptr<Saved> new_acts() const;
  /// x [b, T, C] -> x' (a buffer in @p s); @p cache: this layer's KV cache when generating.
  const Tensor& forward(Saved& s, const Tensor& x, const Pass& pass, KvCache* cache, const BlockObserver& seen);
  /// B: dx' -> dx (the norms' gains accumulate here too, see RmsNorm).
  const Tensor& backward_input(Saved& s, const Tensor& dy, const BlockObserver& seen);
  /// W: the attention's and the MLP's weight gradients accumulate.
  void backward_weight(Saved& s, const BlockObserver& seen);
  /// The aux loss of the forward on @p s (0 for a dense layer).
  double aux_loss(const Saved& s) const { return mlp_->aux_loss(*s.mlp); }
  /// One pass in flight, over the layer's own Saved: x [B, T, C], pos int32 [T] -> x'.
  const Tensor& forward(const Tensor& x, const Tensor& pos);
  /// B and W of forward(x, pos).
  const Tensor& backward(const Tensor& dy);
  /// Inference step over a KV cache (see Attention::forward_cached).
  const Tensor& forward_cached(const Tensor& x, std::int64_t start, KvCache& cache);
  /// Aux loss of the last forward on the layer's own Saved.
  double aux_loss() const { return aux_loss(*own_); }
  /// The MoE MLP, or nullptr for a dense layer.
  MoeLayer* moe() { return dynamic_cast<MoeLayer*>(mlp_.get()); }

 private:
  Ops* ops_;
  std::string attn_label_, mlp_label_;
  RmsNorm norm1_, norm2_;
  std::unique_ptr<Block> attn_, mlp_;
  std::unique_ptr<Saved> own_;
};

/// The context of one pass through one chunk: the forward's inputs and every part's activations.
struct ChunkActs {
  Pass pass;                                          ///< tokens, targets, positions, scales, caches
  std::unique_ptr<Acts> embed;  ///< the embedding's (first chunk only)
  std::unique_ptr<Acts> head;  ///< the head's (last chunk only)
  std::vector<std::unique_ptr<DecoderLayer::Saved>> layers;  ///< one per layer of the chunk
  RmsNorm::Saved norm;                                ///< the final norm (last chunk)
  Tensor out;                   ///< the forward's output: x [b, T, C], or the logits (last chunk)
  Tensor dx;                    ///< backward_input's output: d loss / d the chunk's input
  const void* owner = nullptr;  ///< the Chunk that made these activations (checked on use)
  double ce = 0.0;              ///< cross-entropy of the pass (last chunk, when targets were given)
  double aux = 0.0;             ///< aux losses of the chunk's MoE layers
};

/// Consecutive layers [first, last) of the model, with the embedding when first == 0 and the
/// final norm, head and loss when last == L.
///
/// A pass keeps HANDLES to what it is given (the input x of forward, the gradient dy of the
/// backward), not copies, until its W is done: a pipeline schedule receives each microbatch's
/// activations and gradients into tensors of their own, not into one reused buffer. With B and W
/// apart, before_backward of every unit of the chunk runs before any W: a synchroniser that
/// recycles per-unit workspaces between units (ZeRO-2/3 here) needs the plain backward().
class Chunk {
 public:
  /// Layers [@p first, @p last) of @p cfg with the parts of @p parts over @p params.
  Chunk(Ops& ops, const ModelConfig& cfg, ParamRegistry& params, PartFactory& parts, int first, int last);
  /// First layer held.
  int first_layer() const { return first_; }
  /// One past the last layer held.
  int last_layer() const { return last_; }
  /// True for the chunk that starts the model (it reads tokens).
  bool has_embedding() const { return embed_ != nullptr; }
  /// True for the chunk that ends the model (it gives logits and the loss).
  bool has_head() const { return head_ != nullptr; }
  /// Fresh activations for one pass.
  std::unique_ptr<ChunkActs> new_acts() const;
  /// Forward of one pass: @p x is the previous chunk's output (ignored by the first chunk, which
  /// reads a.pass.tokens). Returns the output x [b, T, C], or the logits for the last chunk (and
  /// then a.ce when a.pass.targets is defined). Hooks around every unit.
  const Tensor& forward(ChunkActs& a, const Tensor& x, const UnitHooks& hooks = {});
  /// B of every unit, last to first: @p dy is d loss / d output (ignored by the last chunk, which
  /// starts from its loss). Returns d loss / d x, the gradient to send to the previous chunk (for
  /// the first chunk: d loss / d embedding output, which its W consumes).
  const Tensor& backward_input(ChunkActs& a, const Tensor& dy, const UnitHooks& hooks = {});
  /// W of every unit, last to first; after_backward fires after each unit's W.
  void backward_weight(ChunkActs& a, const UnitHooks& hooks = {});
  /// The plain backward: unit by unit, B then W (so a unit's gradients are complete, and its hook
  /// fires, before the next unit starts). Returns what backward_input returns.
  const Tensor& backward(ChunkActs& a, const Tensor& dy, const UnitHooks& hooks = {});
  /// The decoder layers held.
  std::deque<DecoderLayer>& layers() { return layers_; }
  /// The head part (last chunk only).
  HeadPart& head() { return *head_; }
  /// Sets (or clears, with {}) the block observer.
  void set_observer(BlockObserver seen) { seen_ = std::move(seen); }

 private:
  int unit_of_layer(int i) const { return 1 + first_ + i; }
  void head_backward_input(ChunkActs& a);
  Ops* ops_;
  int first_, last_, L_;
  std::unique_ptr<EmbeddingPart> embed_;
  std::deque<DecoderLayer> layers_;
  std::unique_ptr<RmsNorm> norm_;
  std::unique_ptr<HeadPart> head_;
  BlockObserver seen_;
  void check_owner(const ChunkActs& a) const;
  std::vector<std::string> fwd_names_, bwd_names_, b_names_, w_names_;  // trace span names per unit
};

/// The chunks one rank holds, and the whole-model conveniences for a rank that holds them all.
class Decoder {
 public:
  /// The chunks of layer ranges @p chunks ({first, last} in model order; empty: one chunk of all
  /// layers) with the parts of @p parts over @p params.
  Decoder(Ops& ops, const ModelConfig& cfg, ParamRegistry& params, PartFactory& parts,
          std::vector<std::pair<int, int>> chunks = {});
  /// The configuration.
  const ModelConfig& config() const { return cfg_; }
  /// The compute backend.
  Ops& ops() { return *ops_; }
  /// Number of chunks held.
  int num_chunks() const { return static_cast<int>(chunks_.size()); }
  /// Chunk @p i.
  Chunk& chunk(int i) { return *chunks_.at(i); }
  /// Sets (or clears) the block observer of every chunk.
  void set_observer(BlockObserver seen);
  /// The global positions int32 [T_l] of the tokens of whole-model training passes (forward,
  /// forward_logits); undefined (the default): 0..T-1. A rank that holds only some positions of
  /// every sequence (sequence parallelism) sets its own.
  void set_positions(Tensor pos) { pos_ = std::move(pos); }

  // ---- A rank that holds the whole model, one pass in flight (its own ChunkActs).
  /// tokens int32 [B, T] (any device) -> the logits this rank holds [B, T, V or V/tp].
  const Tensor& forward_logits(const Tensor& tokens, const UnitHooks& hooks = {});
  /// Forward and loss: mean cross-entropy over the B*T tokens against @p targets int32 [B, T]
  /// (any device), plus the aux loss of every MoE layer. Returns the total. @p loss_scale and
  /// @p aux_scale are the pass's (see Pass): a microbatch of a larger step passes 1/(step's
  /// rows) and its share of the step's sequences.
  double forward(const Tensor& tokens, const Tensor& targets, const UnitHooks& hooks = {}, double loss_scale = 0.0,
                 double aux_scale = 1.0);
  /// Backward of the last forward(tokens, targets): ACCUMULATES into every gradient.
  void backward(const UnitHooks& hooks = {});
  /// The logits of the last forward.
  const Tensor& logits() const { return last_pass().out; }
  /// Every activation the last forward kept (for inspection: what a layout holds per rank).
  const ChunkActs& activations() const { return last_pass(); }
  /// Cross-entropy part of the last forward's loss.
  double ce_loss() const { return last_pass().ce; }
  /// Aux-loss part of the last forward's loss.
  double aux_loss() const { return last_pass().aux; }
  /// The decoder layers (for inspection, e.g. MoE routing of the last forward).
  std::deque<DecoderLayer>& layers() { return whole().layers(); }
  /// Greedy generation: extends each row of @p prompt [B, P] (int32) by @p new_tokens tokens
  /// (the head's argmax of the last logits, ties -> lower id), returning [B, P + new_tokens] on
  /// the host. With @p use_cache a prefill then one-token steps over KV caches (each rank caches
  /// the kv heads it holds); without, a full forward per new token. MoE layers route dropless
  /// while generating (a per-sequence capacity depends on the sequence length).
  Tensor generate(const Tensor& prompt, int new_tokens, bool use_cache);

 private:
  Chunk& whole();
  const ChunkActs& last_pass() const;
  Tensor pass_positions(const Tensor& current, std::int64_t T);
  Ops* ops_;
  ModelConfig cfg_;
  ParamRegistry* registry_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
  std::unique_ptr<ChunkActs> whole_;
  Tensor pos_;                      // set_positions()
  std::unique_ptr<ChunkActs> gen_;  // generation's activations (kept: MoE routing() may point into them)
  BlockObserver seen_;
};

}  // namespace fivefold::nn
