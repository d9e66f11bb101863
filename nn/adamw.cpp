// SPDX-License-Identifier: MIT
// AdamW over a list of tensors: the moments live beside the parameters, one Ops call each.
#include "nn/adamw.hpp"

#include "common/check.hpp"

namespace fivefold::nn {

AdamWConfig AdamWConfig::from(const ModelConfig& cfg) {
  return {static_cast<float>(cfg.lr), static_cast<float>(cfg.beta1), static_cast<float>(cfg.beta2),
          static_cast<float>(cfg.eps), static_cast<float>(cfg.weight_decay)};
}

AdamW::AdamW(Ops& ops, const AdamWConfig& cfg, ParamRegistry& reg) : AdamW(ops, cfg) {
  for (Param& p : reg.all()) add(p.value, p.grad);
}

void AdamW::add(Tensor value, Tensor grad) {
  FIVEFOLD_CHECK(value.numel() == grad.numel(), "AdamW::add: value ", value.str(), " and grad ", grad.str(),
                 " differ in size");
  Tensor m = ops_->zeros(value.shape()), v = ops_->zeros(value.shape());
  slots_.push_back({std::move(value), std::move(grad), std::move(m), std::move(v)});
}

void AdamW::step() {
  ++step_;  // TUTORIAL: counted from 1, so the first bias correction divides by 1 - beta
  for (Slot& s : slots_)
    ops_->adamw_step(s.value, s.grad, s.m, s.v, cfg_.lr, cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weight_decay, step_);
}

}  // namespace fivefold::nn
