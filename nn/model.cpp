// SPDX-License-Identifier: MIT
// The serial reference model: the decoder with the serial parts over full parameters.
#include "nn/model.hpp"

#include "nn/train_step.hpp"

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

ReferenceRun train_reference(Ops& ops, const ModelConfig& cfg, const std::function<Batch(int)>& batch_of,
                             const std::function<void(int, Model&)>& after_step) {
  Model model(ops, cfg);
  LocalUpdate update(ops, model.params(), AdamWConfig::from(cfg));
  ReferenceRun run;
  for (int k = 0; k < cfg.steps; ++k) {
    run.losses.push_back(train_step(model, update, batch_of(k)));
    if (k == 0)
      for (const Param& p : model.params().all()) run.grads0[p.name] = p.grad.clone();
    if (after_step) after_step(k, model);
  }
  for (const Param& p : model.params().all()) run.final[p.name] = p.value.clone();
  return run;
}

}  // namespace fivefold::nn
