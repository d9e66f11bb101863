// SPDX-License-Identifier: MIT
/// @file tp_model.hpp
/// @brief The whole reference model under tensor parallelism: the one decoder (nn/decoder.hpp)
/// with the tensor-parallel parts over this rank's shards. Vocab-parallel embedding, attention by
/// heads, TP SwiGLU MLP, replicated norms, vocab-parallel LM head and cross-entropy; training and
/// greedy generation with the KV cache sharded by heads. Equal to nn::Model up to the order of
/// the sums.
///
/// Typical step (same as the serial model):
///   model.zero_grad(); double loss = model.forward(tokens, targets); model.backward(); adamw.step();
/// Communication (all-reduces in the TP group, see tp_costs.hpp): forward 1 + 2L of [B,T,C] and 3
/// of [B*T]; backward 2L + 1 of [B,T,C]. The residual stream and the norms are replicated: every
/// rank holds the same x, so a norm's gradient is the same on every rank without communication.
#pragma once

#include <memory>

#include "chapters/03_tensor_parallel/tp_attention.hpp"
#include "chapters/03_tensor_parallel/tp_layout.hpp"
#include "chapters/03_tensor_parallel/tp_linear.hpp"
#include "chapters/03_tensor_parallel/tp_vocab.hpp"
#include "nn/decoder.hpp"

namespace fivefold::ch03 {

/// Called after each block (see nn::BlockObserver).
using BlockObserver = nn::BlockObserver;

/// The tensor-parallel parts: what changes in the model under TP, and nothing else.
class TpParts : public nn::PartFactory {
 public:
  /// Parts of @p cfg over the TP group @p tp.
  TpParts(Ops& ops, Communicator& tp, const ModelConfig& cfg) : ops_(&ops), tp_(&tp), cfg_(cfg) {}
  std::unique_ptr<nn::EmbeddingPart> embedding(nn::ParamRegistry& params) override;
  std::unique_ptr<nn::Block> attention(nn::ParamRegistry& params, int l) override;
  std::unique_ptr<nn::Block> mlp(nn::ParamRegistry& params, int l) override;
  std::unique_ptr<nn::HeadPart> head(nn::ParamRegistry& params) override;

 private:
  Ops* ops_;
  Communicator* tp_;
  ModelConfig cfg_;
};

/// The shards of a TP model, built before its decoder (a base class, so it is constructed first).
struct TpStorage {
  /// This rank's shards of @p cfg over @p tp.
  TpStorage(Ops& ops, Communicator& tp, const ModelConfig& cfg);
  Communicator* tp_;  ///< the TP group
  TpParams params_;   ///< this rank's shards
  TpParts parts_;     ///< the TP parts
};

/// The model on one rank of a TP group: the decoder configured with the TP parts.
class TpModel : private TpStorage, public nn::Decoder {
 public:
  /// This rank's shards of @p cfg (dense) over the group @p tp (validate_tp first).
  TpModel(Ops& ops, Communicator& tp, const ModelConfig& cfg);
  /// This rank's shards and their gradients.
  TpParams& params() { return params_; }
  /// The TP group.
  Communicator& group() { return *tp_; }
  /// Zeroes every gradient.
  void zero_grad() { params_.zero_grad(); }
  /// Greedy generation with a KV cache, every rank caching only its Hkv/tp heads (Decoder::generate).
  /// Same tokens on every rank, returned on the host.
  Tensor generate(const Tensor& prompt, int new_tokens) { return Decoder::generate(prompt, new_tokens, true); }
};

}  // namespace fivefold::ch03
