// SPDX-License-Identifier: MIT
/// @file layers.hpp
/// @brief The reference model's simple layers, each a forward that saves what its backward
/// needs and a hand-written backward: linear, Embedding, RMSNorm, SwiGLU MLP, LM head with
/// cross-entropy. Written once against Ops, so the same code runs on every backend.
///
/// Conventions of every layer in nn/:
/// - A layer holds handles (Tensors share memory) to its weights and their gradients; a
///   backward ACCUMULATES (+=) into the weight gradients, and returns d(input) (overwritten).
/// - What a forward saves for its backward, and the buffers it returns, live in a Saved object
///   of the layer's (one per pass in flight, see parts.hpp), reused from call to call when the
///   shape repeats: valid until the next forward/backward on the same Saved. The inputs a forward
///   saves are handles, so the caller must not overwrite them before the backward.
/// - The one-argument forward(x)/backward(dy) run one pass over the layer's own Saved: what a
///   test or a step file needs. The decoder passes a Saved per (chunk, microbatch) instead.
/// - Shapes as in the reference model (chapter 01's README); [N, C] means N = B*T rows.
#pragma once

#include <memory>
#include <vector>

#include "backends/ops.hpp"
#include "common/tensor.hpp"
#include "nn/params.hpp"
#include "nn/parts.hpp"

namespace fivefold::nn {

/// Makes @p t an fp32 (or @p dtype) tensor of @p shape on ops.device(), reallocating only when
/// its shape or dtype differs (contents are then unspecified).
void ensure(Ops& ops, Tensor& t, const Shape& shape, DType dtype = DType::f32);

/// @p s with its last dimension replaced by @p n (a linear's output shape from its input's).
Shape with_last(const Shape& s, std::int64_t n);

/// y = x W^T. x [N, in], w [out, in] (torch.nn.Linear layout), y [N, out] overwritten.
void linear_forward(Ops& ops, Tensor& y, const Tensor& x, const Tensor& w);
/// Backward of y = x W^T: dw += dy^T x; dx = dy W (or dx += dy W when @p accumulate_dx);
/// dx is skipped when undefined. (linear_backward_input then linear_backward_weight.)
void linear_backward(Ops& ops, Tensor& dx, Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                     bool accumulate_dx = false);
/// The input gradient alone (B): dx = dy W, or dx += dy W when @p accumulate.
void linear_backward_input(Ops& ops, Tensor& dx, const Tensor& dy, const Tensor& w, bool accumulate = false);
/// The weight gradient alone (W): dw += dy^T x.
void linear_backward_weight(Ops& ops, Tensor& dw, const Tensor& dy, const Tensor& x);

/// Token embedding: x = table[tokens].
class Embedding : public EmbeddingPart {
 public:
  /// What one pass keeps: the looked-up ids and the output.
  struct Saved : Acts {
    Tensor tokens;  ///< int32 [B, T]
    Tensor y;       ///< [B, T, C]
  };
  /// @p table is embed_tokens.weight [V, C].
  Embedding(Ops& ops, Param& table) : ops_(&ops), w_(table.value), dw_(table.grad) {}
  std::unique_ptr<Acts> new_acts() const override { return std::make_unique<Saved>(); }
  /// pass.tokens int32 [B, T] on the device -> x [B, T, C].
  const Tensor& forward(Acts& a, const Pass& pass) override;
  /// dx [B, T, C]: scatter-adds into the table gradient.
  void backward_weight(Acts& a, const Tensor& dx) override;
  /// One pass in flight, over the layer's own Saved: tokens int32 [B, T] (device) -> x.
  const Tensor& forward(const Tensor& tokens);
  /// Backward of forward(tokens).
  void backward(const Tensor& dx) { backward_weight(own_, dx); }

 private:
  Ops* ops_;
  Tensor w_, dw_;
  Saved own_;
};

/// RMSNorm: y = x / sqrt(mean(x^2) + eps) * w. Its weight gradient comes out of the same op as
/// its input gradient (O(N*C), no matmul), so its backward is one call, done in the B pass.
class RmsNorm {
 public:
  /// What one pass keeps.
  struct Saved {
    Tensor x;     ///< the input (a handle)
    Tensor rstd;  ///< [N] 1/rms per row
    Tensor y;     ///< output
    Tensor dx;    ///< input gradient
  };
  /// @p w is a [C] gain; @p eps the contract's 1e-5.
  RmsNorm(Ops& ops, Param& w, float eps) : ops_(&ops), w_(w.value), dw_(w.grad), eps_(eps) {}
  /// x [.., C] -> y, same shape (saves x and the per-row 1/rms in @p s).
  const Tensor& forward(Saved& s, const Tensor& x);
  /// dy -> dx (a buffer in @p s); dw accumulates.
  const Tensor& backward(Saved& s, const Tensor& dy);
  /// One pass in flight, over the layer's own Saved.
  const Tensor& forward(const Tensor& x) { return forward(own_, x); }
  /// Backward of forward(x).
  const Tensor& backward(const Tensor& dy) { return backward(own_, dy); }

 private:
  Ops* ops_;
  Tensor w_, dw_;
  float eps_;
  Saved own_;
};

/// Weights (value and gradient handles) of one SwiGLU MLP: down(silu(gate(x)) * up(x)).
struct SwiGluWeights {
  Tensor gate;    ///< gate_proj.weight [F, C]
  Tensor up;      ///< up_proj.weight [F, C]
  Tensor down;    ///< down_proj.weight [C, F]
  Tensor d_gate;  ///< gradient of gate
  Tensor d_up;    ///< gradient of up
  Tensor d_down;  ///< gradient of down
};
/// SwiGluWeights from the registry entries "<prefix>.gate_proj.weight", ... (prefix e.g.
/// "layers.0.mlp" or "layers.0.moe.experts.3").
SwiGluWeights swiglu_weights(ParamRegistry& reg, const std::string& prefix);

/// The dense MLP (and each MoE expert).
class SwiGluMlp : public Block {
 public:
  /// What one pass keeps.
  struct Saved : Acts {
    Tensor x;  ///< input
    Tensor g;  ///< gate(x)
    Tensor u;  ///< up(x)
    Tensor h;  ///< silu(g)*u
    Tensor y;  ///< output
    Tensor dy;  ///< output gradient (a handle, kept for W)
    Tensor dh;  ///< gradient of h
    Tensor dg;  ///< gradient of g
    Tensor du;  ///< gradient of u
    Tensor dx;  ///< input gradient
  };
  /// An MLP over @p w.
  SwiGluMlp(Ops& ops, SwiGluWeights w) : ops_(&ops), w_(std::move(w)) {}
  std::unique_ptr<Acts> new_acts() const override { return std::make_unique<Saved>(); }
  /// x [N, C] (or [B, T, C]) -> y of the same shape.
  const Tensor& forward(Acts& a, const Tensor& x, const Pass& pass, KvCache* cache) override;
  /// B: dy -> dx.
  const Tensor& backward_input(Acts& a, const Tensor& dy) override;
  /// W: gate/up/down gradients accumulate.
  void backward_weight(Acts& a) override;
  /// One pass in flight, over the layer's own Saved.
  const Tensor& forward(const Tensor& x) { return forward(own_, x, Pass{}, nullptr); }
  /// B and W of forward(x): dy -> dx.
  const Tensor& backward(const Tensor& dy);

 private:
  Ops* ops_;
  SwiGluWeights w_;
  Saved own_;
};

/// Output projection and the mean token cross-entropy: logits = h W^T, loss = mean_i CE.
class LmHead : public HeadPart {
 public:
  /// What one pass keeps.
  struct Saved : Acts {
    Tensor h;  ///< input (handle)
    Tensor logits;  ///< logits
    Tensor dlogits;  ///< their gradient
    Tensor rowloss;  ///< CE per row
    Tensor dh;  ///< input gradient [B, T, C]
  };
  /// @p w is lm_head.weight [V, C].
  LmHead(Ops& ops, Param& w) : ops_(&ops), w_(w.value), dw_(w.grad) {}
  std::unique_ptr<Acts> new_acts() const override { return std::make_unique<Saved>(); }
  /// h [B, T, C] -> logits [B, T, V] (saves h).
  const Tensor& forward(Acts& a, const Tensor& h) override;
  /// Cross-entropy of the last logits against pass.targets int32 [B, T] (device): returns the
  /// mean over the B*T tokens (summed in double on the host) and stores dlogits (scaled by
  /// pass.loss_scale, or 1/(B*T) when 0).
  double loss(Acts& a, const Pass& pass) override;
  /// B: from the stored dlogits, dh [B, T, C].
  const Tensor& backward_input(Acts& a) override;
  /// W: lm_head grad accumulates.
  void backward_weight(Acts& a) override;
  const Tensor& logits(const Acts& a) const override { return static_cast<const Saved&>(a).logits; }
  std::vector<std::int32_t> argmax(const Tensor& logits, std::int64_t t) override;
  /// One pass in flight, over the layer's own Saved.
  const Tensor& forward(const Tensor& h) { return forward(own_, h); }
  /// loss() of forward(h) against @p targets int32 [B, T] (device).
  double loss(const Tensor& targets);
  /// B and W of forward(h).
  const Tensor& backward();
  /// The logits of the last forward(h).
  const Tensor& logits() const { return own_.logits; }

 private:
  Ops* ops_;
  Tensor w_, dw_;
  Saved own_;
};

/// Greedy next token of every row b of logits [B, T, V] at position @p t: argmax over V, ties to
/// the lower id (host).
std::vector<std::int32_t> argmax_at(const Tensor& logits, std::int64_t t);

}  // namespace fivefold::nn
