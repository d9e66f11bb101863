// SPDX-License-Identifier: MIT
/// @file traced_model.hpp
/// @brief The reference model's forward and backward written out block by block, each block in
/// a TraceSpan (--trace) and optionally logged with its output shape (step 2's narration).
///
/// It is nn::Model's loop, spelled out in the chapter so a reader sees the whole model on one
/// screen: embedding -> L decoder layers -> final RMSNorm -> lm_head -> cross-entropy (+ aux).
/// It owns its own layer objects (and so its own activation buffers) over the parameters of a
/// registry it shares with an nn::Model; the chapter checks the two agree bit for bit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/ops.hpp"
#include "common/model_config.hpp"
#include "nn/model.hpp"

namespace fivefold::ch01 {

/// One logged block output: what it is and its shape.
struct ShapeRow {
  std::string what;  ///< e.g. "layers.0 output x"
  Shape shape;       ///< e.g. [B, T, C]
  DType dtype = DType::f32;  ///< element type
};

/// The model, block by block (see the file comment).
class TracedModel {
 public:
  /// Layers of @p cfg over the parameters of @p reg (which must hold model_param_specs(cfg)).
  TracedModel(Ops& ops, nn::ParamRegistry& reg, const ModelConfig& cfg);
  /// The configuration.
  const ModelConfig& config() const { return cfg_; }
  /// tokens int32 [B, T] (any device) -> logits [B, T, V].
  const Tensor& forward_logits(const Tensor& tokens);
  /// Forward and loss (mean cross-entropy + every MoE layer's aux loss); returns the total.
  double forward(const Tensor& tokens, const Tensor& targets);
  /// Backward of the last forward(): every parameter gradient ACCUMULATES.
  void backward();
  /// Logits of the last forward.
  const Tensor& logits() const { return head_.logits(); }
  /// Cross-entropy part of the last loss.
  double ce_loss() const { return ce_; }
  /// Aux-loss part of the last loss (0 for a dense model).
  double aux_loss() const { return aux_; }
  /// The decoder layers (MoE routing of the last forward: layers()[l].moe()->routing()).
  std::vector<nn::DecoderLayer>& layers() { return layers_; }
  /// Overrides the capacity factor of every MoE layer (generation runs dropless: 0).
  void set_capacity_factor(double cf);
  /// Starts (true) or stops logging block outputs into shape_log().
  void log_shapes(bool on) { log_ = on; log_rows_.clear(); }
  /// The block outputs of the forward/backward since log_shapes(true).
  const std::vector<ShapeRow>& shape_log() const { return log_rows_; }

 private:
  void note(const std::string& what, const Tensor& t);
  Ops* ops_;
  ModelConfig cfg_;
  nn::Embedding embed_;
  std::vector<nn::DecoderLayer> layers_;
  nn::RmsNorm norm_;
  nn::LmHead head_;
  Tensor tokens_, targets_, pos_;
  double ce_ = 0.0, aux_ = 0.0;
  std::vector<std::string> fwd_names_, bwd_names_;  // span names must outlive the spans
  bool log_ = false;
  std::vector<ShapeRow> log_rows_;
};

}  // namespace fivefold::ch01
