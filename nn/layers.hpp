// SPDX-License-Identifier: MIT
/// @file layers.hpp
/// @brief The reference model's simple layers, each a forward that saves what its backward
/// needs and a hand-written backward: linear, Embedding, RMSNorm, SwiGLU MLP, LM head with
/// cross-entropy. Written once against Ops, so the same code runs on every backend.
///
/// Conventions of every layer in nn/:
/// - A layer holds handles (Tensors share memory) to its weights and their gradients; a
///   backward ACCUMULATES (+=) into the weight gradients, and returns d(input) (overwritten).
/// - forward/backward return references to buffers the layer owns (reused from call to call
///   when the shape repeats): valid until the layer's next forward/backward. The inputs a
///   forward saves are handles, so the caller must not overwrite them before the backward.
/// - Shapes follow CONTRACT §1; [N, C] means N = B*T rows.
#pragma once

#include "backends/ops.hpp"
#include "nn/params.hpp"
#include "common/tensor.hpp"

namespace fivefold::nn {

/// Makes @p t an fp32 (or @p dtype) tensor of @p shape on ops.device(), reallocating only when
/// its shape or dtype differs (contents are then unspecified).
void ensure(Ops& ops, Tensor& t, const Shape& shape, DType dtype = DType::f32);

/// @p s with its last dimension replaced by @p n (a linear's output shape from its input's).
Shape with_last(const Shape& s, std::int64_t n);

/// y = x W^T. x [N, in], w [out, in] (torch.nn.Linear layout), y [N, out] overwritten.
void linear_forward(Ops& ops, Tensor& y, const Tensor& x, const Tensor& w);
/// Backward of y = x W^T: dw += dy^T x; dx = dy W (or dx += dy W when @p accumulate_dx);
/// dx is skipped when undefined.
void linear_backward(Ops& ops, Tensor& dx, Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                     bool accumulate_dx = false);

/// Token embedding: x = table[tokens].
class Embedding {
 public:
  /// @p table is embed_tokens.weight [V, C].
  Embedding(Ops& ops, Param& table) : ops_(&ops), w_(table.value), dw_(table.grad) {}
  /// tokens int32 [B, T] on the device -> x [B, T, C].
  const Tensor& forward(const Tensor& tokens);
  /// dx [B, T, C]: scatter-adds into the table gradient.
  void backward(const Tensor& dx);

 private:
  Ops* ops_;
  Tensor w_, dw_, tokens_, y_;
};

/// RMSNorm: y = x / sqrt(mean(x^2) + eps) * w.
class RmsNorm {
 public:
  /// @p w is a [C] gain; @p eps the CONTRACT 1e-5.
  RmsNorm(Ops& ops, Param& w, float eps) : ops_(&ops), w_(w.value), dw_(w.grad), eps_(eps) {}
  /// x [.., C] -> y, same shape (saves x and the per-row 1/rms).
  const Tensor& forward(const Tensor& x);
  /// dy -> dx (overwritten buffer); dw accumulates.
  const Tensor& backward(const Tensor& dy);

 private:
  Ops* ops_;
  Tensor w_, dw_, x_, rstd_, y_, dx_;
  float eps_;
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
class SwiGluMlp {
 public:
  /// An MLP over @p w.
  SwiGluMlp(Ops& ops, SwiGluWeights w) : ops_(&ops), w_(std::move(w)) {}
  /// x [N, C] (or [B, T, C]) -> y of the same shape.
  const Tensor& forward(const Tensor& x);
  /// dy -> dx; gate/up/down gradients accumulate.
  const Tensor& backward(const Tensor& dy);

 private:
  Ops* ops_;
  SwiGluWeights w_;
  Tensor x_, g_, u_, h_, y_, dh_, dg_, du_, dx_;
};

/// Output projection and the mean token cross-entropy: logits = h W^T, loss = mean_i CE.
class LmHead {
 public:
  /// @p w is lm_head.weight [V, C].
  LmHead(Ops& ops, Param& w) : ops_(&ops), w_(w.value), dw_(w.grad) {}
  /// h [B, T, C] -> logits [B, T, V] (saves h).
  const Tensor& forward(const Tensor& h);
  /// Cross-entropy of the last logits against @p targets int32 [B, T] (device): returns the
  /// mean over the B*T tokens (summed in double on the host) and stores dlogits = d mean / d logits.
  double loss(const Tensor& targets);
  /// Backward from the stored dlogits: lm_head grad accumulates; returns dh [B, T, C].
  const Tensor& backward();
  /// The logits of the last forward.
  const Tensor& logits() const { return logits_; }

 private:
  Ops* ops_;
  Tensor w_, dw_, h_, logits_, dlogits_, rowloss_, dh_;
};

}  // namespace fivefold::nn
