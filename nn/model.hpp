// SPDX-License-Identifier: MIT
/// @file model.hpp
/// @brief The serial reference model: the one decoder (decoder.hpp) with the serial parts over a
/// registry of full parameters. Every parallel chapter checks itself against it.
///
/// Typical step:
///   model.zero_grad(); double loss = model.forward(tokens, targets); model.backward(); adamw.step();
#pragma once

#include "backends/ops.hpp"
#include "common/model_config.hpp"
#include "nn/decoder.hpp"
#include "nn/data.hpp"
#include "nn/params.hpp"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace fivefold::nn {

/// The parameters of a model, built before the decoder that runs over them (a base class, so that
/// it is constructed first).
struct ModelStorage {
  /// Validates @p cfg and registers every parameter of it on ops.device(), drawn from cfg.seed.
  ModelStorage(Ops& ops, const ModelConfig& cfg);
  ParamRegistry params_;  ///< every parameter, full
  SerialParts parts_;     ///< the serial parts
};

/// The whole model with its parameters: the Decoder configured with the serial parts, one chunk.
class Model : private ModelStorage, public Decoder {
 public:
  /// Validates @p cfg, registers and initialises every parameter on ops.device().
  Model(Ops& ops, const ModelConfig& cfg);
  /// The parameters and their gradients.
  ParamRegistry& params() { return params_; }
  /// Zeroes every gradient.
  void zero_grad() { params_.zero_grad(); }
};

/// The serial model trained on a stream of batches: the reference a parallel chapter checks against.
struct ReferenceRun {
  std::vector<double> losses;            ///< loss of each step (before its update)
  std::map<std::string, Tensor> grads0;  ///< step 0's gradients by parameter name
  std::map<std::string, Tensor> final;   ///< the parameters after the last step
};
/// Trains nn::Model(@p cfg) for cfg.steps AdamW steps, one nn::train_step on @p batch_of(k) each;
/// @p after_step(k, model), when given, runs after step k (e.g. to read its MoE routing).
ReferenceRun train_reference(Ops& ops, const ModelConfig& cfg, const std::function<Batch(int)>& batch_of,
                             const std::function<void(int, Model&)>& after_step = {});

}  // namespace fivefold::nn
