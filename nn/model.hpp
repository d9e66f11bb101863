// SPDX-License-Identifier: MIT
/// @file model.hpp
/// @brief The serial reference model of CONTRACT §1: embedding, L decoder layers (attention +
/// dense or MoE MLP), final norm, LM head, mean cross-entropy (+ aux losses); its hand-written
/// backward; greedy generation with a KV cache.
///
/// Every parallel chapter checks itself against this model. Typical step:
///   model.zero_grad(); double loss = model.forward(tokens, targets); model.backward(); adamw.step();
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "backends/ops.hpp"
#include "common/model_config.hpp"
#include "nn/attention.hpp"
#include "nn/layers.hpp"
#include "nn/moe.hpp"
#include "nn/params.hpp"

namespace fivefold::nn {

/// One decoder layer: x + attn(rmsnorm(x)), then + mlp(rmsnorm(.)) (dense or MoE).
class DecoderLayer {
 public:
  /// Layer @p l of @p cfg over the registry's parameters.
  DecoderLayer(Ops& ops, ParamRegistry& reg, const ModelConfig& cfg, int l);
  /// x [B, T, C], pos int32 [T] -> x' [B, T, C].
  const Tensor& forward(const Tensor& x, const Tensor& pos);
  /// dx' -> dx; every parameter gradient of the layer accumulates.
  const Tensor& backward(const Tensor& dy);
  /// Inference step over a KV cache (see Attention::forward_cached).
  const Tensor& forward_cached(const Tensor& x, std::int64_t start, KvCache& cache);
  /// Aux loss of the last forward (0 for a dense layer).
  double aux_loss() const { return moe_ ? moe_->aux_loss() : 0.0; }
  /// The MoE MLP, or nullptr for a dense layer.
  MoeLayer* moe() { return moe_.get(); }

 private:
  const Tensor& mlp_forward(const Tensor& m);
  Ops* ops_;
  RmsNorm norm1_, norm2_;
  Attention attn_;
  std::optional<SwiGluMlp> mlp_;
  std::unique_ptr<MoeLayer> moe_;
  Tensor h_, y_, dh_, dx_;
};

/// The whole model with its parameters.
class Model {
 public:
  /// Validates @p cfg, registers and initialises every parameter on ops.device().
  Model(Ops& ops, const ModelConfig& cfg);
  /// The configuration.
  const ModelConfig& config() const { return cfg_; }
  /// The parameters and their gradients.
  ParamRegistry& params() { return params_; }
  /// Forward of tokens [B, T] (int32, any device) to logits() [B, T, V] (no loss).
  const Tensor& forward_logits(const Tensor& tokens);
  /// Forward and loss: mean cross-entropy over the B*T tokens against @p targets [B, T]
  /// (int32, any device), plus the aux loss of every MoE layer. Returns the total.
  double forward(const Tensor& tokens, const Tensor& targets);
  /// The logits [B, T, V] of the last forward.
  const Tensor& logits() const { return head_.logits(); }
  /// Cross-entropy part of the last forward's loss.
  double ce_loss() const { return ce_loss_; }
  /// Sum over MoE layers of their aux losses in the last forward.
  double aux_loss() const { return aux_loss_; }
  /// Backward of the last forward(tokens, targets): ACCUMULATES d loss / d p into every grad.
  void backward();
  /// Zeroes every gradient.
  void zero_grad() { params_.zero_grad(); }
  /// Greedy generation: extends each row of @p prompt [B, P] (int32, host) by @p new_tokens
  /// tokens (argmax of the last logits, ties -> lower id), returning [B, P + new_tokens] on the
  /// host. With @p use_cache a prefill then one-token steps over a KvCache; without, a full
  /// forward of the whole sequence per new token (same tokens). MoE layers route dropless
  /// during generation (a per-sequence capacity depends on the sequence length).
  Tensor generate(const Tensor& prompt, int new_tokens, bool use_cache);
  /// The decoder layers (for inspection, e.g. MoE routing).
  std::vector<DecoderLayer>& layers() { return layers_; }

 private:
  Ops* ops_;
  ModelConfig cfg_;
  ParamRegistry params_;
  Embedding embed_;
  std::vector<DecoderLayer> layers_;
  RmsNorm final_norm_;
  LmHead head_;
  Tensor tokens_, targets_, pos_;
  double ce_loss_ = 0.0, aux_loss_ = 0.0;
};

}  // namespace fivefold::nn
