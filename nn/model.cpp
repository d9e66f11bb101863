// SPDX-License-Identifier: MIT
// The serial reference model: the decoder with the serial parts over full parameters.
#include "nn/model.hpp"

namespace fivefold::nn {

namespace {

ParamRegistry make_registry(Ops& ops, const ModelConfig& cfg) {
  cfg.validate();
  ParamRegistry reg(ops, cfg.seed);
  reg.add_model(cfg);
  return reg;
}

}  // namespace

ModelStorage::ModelStorage(Ops& ops, const ModelConfig& cfg) : params_(make_registry(ops, cfg)), parts_(ops, cfg) {}

Model::Model(Ops& ops, const ModelConfig& cfg) : ModelStorage(ops, cfg), Decoder(ops, cfg, params_, parts_) {}

}  // namespace fivefold::nn
