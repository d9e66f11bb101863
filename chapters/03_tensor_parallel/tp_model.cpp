// SPDX-License-Identifier: MIT
// The TP model: the tensor-parallel parts, and the decoder over this rank's shards.
#include "chapters/03_tensor_parallel/tp_model.hpp"

namespace fivefold::ch03 {

namespace {

std::string layer_prefix(int l) { return "layers." + std::to_string(l) + "."; }

}  // namespace

std::unique_ptr<nn::EmbeddingPart> TpParts::embedding(nn::ParamRegistry& params) {
  return std::make_unique<VocabParallelEmbedding>(*ops_, *tp_, params.get("embed_tokens.weight"));
}

std::unique_ptr<nn::Block> TpParts::attention(nn::ParamRegistry& params, int l) {
  return std::make_unique<TpAttention>(*ops_, *tp_, cfg_, nn::attention_weights(params, layer_prefix(l) + "self_attn"));
}

std::unique_ptr<nn::Block> TpParts::mlp(nn::ParamRegistry& params, int l) {
  const std::string p = layer_prefix(l) + "mlp.";
  return std::make_unique<TpMlp>(*ops_, *tp_, params.get(p + "gate_proj.weight"), params.get(p + "up_proj.weight"),
                                 params.get(p + "down_proj.weight"));
}

std::unique_ptr<nn::HeadPart> TpParts::head(nn::ParamRegistry& params) {
  return std::make_unique<VocabParallelLmHead>(*ops_, *tp_, params.get("lm_head.weight"));
}

TpStorage::TpStorage(Ops& ops, Communicator& tp, const ModelConfig& cfg)
    : tp_(&tp), params_(ops, cfg, tp.rank(), tp.size()), parts_(ops, tp, cfg) {}

TpModel::TpModel(Ops& ops, Communicator& tp, const ModelConfig& cfg)
    : TpStorage(ops, tp, cfg), Decoder(ops, cfg, params_, parts_) {}

}  // namespace fivefold::ch03
