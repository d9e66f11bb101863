// SPDX-License-Identifier: MIT
/// @file attention.hpp
/// @brief The attention block (q/k/v/o projections, GQA, RoPE, causal attention with
/// positions), its KV cache for generation, and the blockwise online-softmax attention that
/// ring attention reuses (one Ops::attention_forward per key/value block, merged online).
///
/// Head counts are taken as arguments, not from the config, so a tensor-parallel shard
/// (H/tp query heads, Hkv/tp kv heads, weights narrowed to those rows) reuses this code.
#pragma once

#include <cstdint>
#include <vector>

#include <memory>

#include "backends/ops.hpp"
#include "common/tensor.hpp"
#include "nn/params.hpp"
#include "nn/parts.hpp"

namespace fivefold::nn {

/// Weights (value and gradient handles) of one attention block.
struct AttentionWeights {
  Tensor q;    ///< q_proj.weight [H*hd, C]
  Tensor k;    ///< k_proj.weight [Hkv*hd, C]
  Tensor v;    ///< v_proj.weight [Hkv*hd, C]
  Tensor o;    ///< o_proj.weight [C, H*hd]
  Tensor dq;   ///< gradient of q
  Tensor dk;   ///< gradient of k
  Tensor dv;   ///< gradient of v
  Tensor d_o;  ///< gradient of o
};
/// AttentionWeights from "<prefix>.q_proj.weight", ... (prefix e.g. "layers.0.self_attn").
AttentionWeights attention_weights(ParamRegistry& reg, const std::string& prefix);

/// Int32 device tensor [n] holding start, start+1, ..., start+n-1 (token positions).
Tensor positions(Ops& ops, std::int64_t start, std::int64_t n);

/// Keys and values of past tokens for generation: k, v [B, S_max, Hkv, hd], zero-initialised;
/// slot s holds position s. Attention over the cache passes k_pos = 0..S_max-1, so the slots
/// not yet written (s > the query position) are masked by causality.
struct KvCache {
  Tensor k;      ///< keys [B, S_max, Hkv, hd] (after RoPE)
  Tensor v;      ///< values [B, S_max, Hkv, hd]
  Tensor k_pos;   ///< int32 [S_max] = 0..S_max-1
  /// Allocates an empty cache.
  KvCache(Ops& ops, std::int64_t batch, std::int64_t max_seq, std::int64_t kv_heads, std::int64_t head_dim);
};

/// Multi-head causal self-attention with GQA and RoPE: y = attn(rope(a Wq^T), rope(a Wk^T), a Wv^T) Wo^T.
///
/// The projections, RoPE and o_proj are the same whatever holds the sequence; only the core
/// (q, k, v -> o, lse and back) changes when the sequence is split over ranks. A sequence-
/// parallel attention (chapter 05: Ulysses, ring) derives from this class and overrides
/// attend() and attend_backward(), with a Saved of its own derived from Attention::Saved.
class Attention : public Block {
 public:
  /// What one pass keeps.
  struct Saved : Acts {
    Tensor a;  ///< input (a handle)
    Tensor pos;  ///< positions of the tokens (a handle)
    Tensor q;  ///< queries after RoPE [B, T, H, hd]
    Tensor k;  ///< keys after RoPE [B, T, Hkv, hd]
    Tensor v;  ///< values [B, T, Hkv, hd]
    Tensor o;  ///< attention output [B, T, H, hd]
    Tensor lse;  ///< its log-sum-exp [B, H, T]
    Tensor y;  ///< output [B, T, C]
    Tensor dy;  ///< output gradient (a handle, kept for W)
    Tensor d_o;  ///< gradient of o
    Tensor dq;  ///< gradient of q (inverse RoPE applied)
    Tensor dk;  ///< gradient of k (inverse RoPE applied)
    Tensor dv;  ///< gradient of v
    Tensor da;  ///< input gradient
  };
  /// @p heads / @p kv_heads are the query / kv heads held here; @p head_dim = hd.
  Attention(Ops& ops, AttentionWeights w, int heads, int kv_heads, int head_dim, float rope_theta);
  std::unique_ptr<Acts> new_acts() const override { return std::make_unique<Saved>(); }
  /// a [B, T, C], pass.pos int32 [T] (global positions of these tokens) -> y [B, T, C].
  /// With @p cache (generation) the tokens sit at positions pass.start.. and attend over the
  /// cache (see forward_cached); otherwise saves a, rotated q/k, v, the output and its lse.
  const Tensor& forward(Acts& s, const Tensor& a, const Pass& pass, KvCache* cache) override;
  /// B: dy [B, T, C] -> da [B, T, C].
  const Tensor& backward_input(Acts& s, const Tensor& dy) override;
  /// W: the four weight gradients accumulate.
  void backward_weight(Acts& s) override;
  /// One pass in flight, over the block's own Saved: a [B, T, C], pos int32 [T] -> y.
  const Tensor& forward(const Tensor& a, const Tensor& pos);
  /// B and W of forward(a, pos): dy -> da.
  const Tensor& backward(const Tensor& dy);
  /// Inference step with a cache: a [B, T, C] are the tokens at positions start..start+T-1;
  /// their k/v are written into @p cache and the queries attend over the whole cache. No
  /// backward. Gives the same y as forward() over the full sequence, row for row.
  const Tensor& forward_cached(const Tensor& a, std::int64_t start, KvCache& cache);
  /// Query heads held here.
  int heads() const { return heads_; }
  /// Key/value heads held here.
  int kv_heads() const { return kv_heads_; }

 protected:
  /// s.q, s.k, s.v of the tokens a [B, T, C] at positions pos [T], RoPE applied to q and k.
  void project(Saved& s, const Tensor& a, const Tensor& pos);
  /// The core: s.o [B, T, H, hd] and s.lse [B, H, T] from s.q, s.k, s.v at positions s.pos (one
  /// Ops::attention_forward here: every key of the sequence is on this rank).
  virtual void attend(Saved& s);
  /// The core's backward: s.dq, s.dk, s.dv (before the inverse RoPE) from s.d_o.
  virtual void attend_backward(Saved& s);
  /// With a cache (generation): the tokens' q/k/v, the cache appended, the core over it, o_proj.
  virtual const Tensor& attend_cached(Saved& s, const Tensor& a, std::int64_t start, KvCache& cache);
  /// y [B, T, C] = s.o Wo^T (into s.y).
  const Tensor& output_projection(Saved& s, std::int64_t B, std::int64_t T);
  Ops* ops_;            ///< the compute backend
  AttentionWeights w_;  ///< the four weights and their gradients
  int heads_;           ///< query heads held here
  int kv_heads_;        ///< key/value heads held here
  int head_dim_;        ///< hd
  float theta_;         ///< RoPE base

 private:
  Saved own_;
};

/// Online-softmax attention of fixed queries over key/value blocks that arrive one at a time
/// (ring attention): after add_block for every block, out()/lse() equal one Ops::attention_forward
/// over all the keys (up to float rounding of the merge).
class OnlineAttention {
 public:
  /// q [B, T, H, hd], q_pos int32 [T]; starts with no keys (out 0, lse -inf).
  OnlineAttention(Ops& ops, const Tensor& q, const Tensor& q_pos);
  /// Attends to one block k, v [B, S_b, Hkv, hd] with k_pos int32 [S_b] and merges it in.
  void add_block(const Tensor& k, const Tensor& v, const Tensor& k_pos);
  /// [B, T, H, hd] attention output over every block added so far.
  const Tensor& out() const { return out_; }
  /// [B, H, T] logsumexp over every block added so far (needed by the backward).
  const Tensor& lse() const { return lse_; }

 private:
  Ops* ops_;
  Tensor q_, q_pos_, out_, lse_, out_b_, lse_b_;
};

/// Rows [start, start+len) of dimension 1 of x [B, S, ...] as a new contiguous [B, len, ...].
Tensor slice_dim1(Ops& ops, const Tensor& x, std::int64_t start, std::int64_t len);
/// dst[:, start:start+src.dim(1)] += src, for dst [B, S, ...] and src [B, len, ...].
void add_into_dim1(Ops& ops, Tensor& dst, const Tensor& src, std::int64_t start);

/// Blockwise attention forward: splits k/v [B, S, Hkv, hd] into blocks of @p block keys along S
/// and runs OnlineAttention over them. Same result as Ops::attention_forward.
void blockwise_attention_forward(Ops& ops, Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& q_pos, const Tensor& k_pos, std::int64_t block);
/// Blockwise attention backward: one Ops::attention_backward per key block, each given the
/// full @p out / @p lse; dq accumulates over blocks, each block's dk/dv land in its slice of
/// dk/dv (all three ACCUMULATE, as in Ops::attention_backward).
void blockwise_attention_backward(Ops& ops, Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout,
                                  const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                  const Tensor& lse, const Tensor& q_pos, const Tensor& k_pos, std::int64_t block);

}  // namespace fivefold::nn
