// SPDX-License-Identifier: MIT
// The model with experts over the ep group, its parameters and its training step.
#include "chapters/06_expert_parallel/ep_model.hpp"

#include "common/check.hpp"

namespace fivefold::ch06 {

std::unique_ptr<nn::Block> EpParts::mlp(nn::ParamRegistry& params, int l) {
  if (!cfg_.is_moe_layer(l)) return nn::SerialParts::mlp(params, l);
  auto m = std::make_unique<EpMoeLayer>(*ops_, *ep_, params, "layers." + std::to_string(l) + ".moe", cfg_);
  moe_.push_back(m.get());
  return m;
}

EpStorage::EpStorage(Ops& ops, Communicator& ep, const ModelConfig& cfg) : params_(ops, cfg.seed), parts_(ops, ep, cfg) {
  const auto [first, count] = experts_of(cfg.experts, ep.size(), ep.rank());
  for (const nn::ParamSpec& p : nn::model_param_specs(cfg)) {
    const int e = nn::expert_index(p.name);
    if (e < 0 || (e >= first && e < first + count)) params_.add(p.name, p.shape);  // TUTORIAL: only my experts
  }
}

std::string check_layout(const ModelConfig& cfg, int ep, int dp, int world) {
  if (cfg.experts == 0) return "--experts 0: chapter 06 needs a MoE model; pass --experts 4 (or more)";
  if (cfg.experts % ep != 0)
    return "--experts " + std::to_string(cfg.experts) + " cannot be split over --ep " + std::to_string(ep) +
           " ranks; pass a number of experts divisible by " + std::to_string(ep);
  if (cfg.topk > cfg.experts)
    return "--topk " + std::to_string(cfg.topk) + " is more than --experts " + std::to_string(cfg.experts) +
           "; pass --topk <= --experts";
  if (ep * dp != world)
    return "--ep " + std::to_string(ep) + " x --dp " + std::to_string(dp) + " = " + std::to_string(ep * dp) +
           " ranks, but the job has " + std::to_string(world) + "; run mpirun -np " + std::to_string(ep * dp) +
           " or change --ep / --dp";
  if (cfg.batch % (ep * dp) != 0)
    return "--batch " + std::to_string(cfg.batch) + " cannot be split into whole sequences over ep x dp = " +
           std::to_string(ep * dp) + " ranks (capacity is counted per sequence); pass a multiple of " +
           std::to_string(ep * dp);
  return "";
}

EpModel::EpModel(Ops& ops, Communicator& ep, Communicator& dp, Communicator& data, const ModelConfig& cfg)
    : EpStorage(ops, ep, cfg), nn::Decoder(ops, cfg, params_, parts_), ep_(&ep), dp_(&dp), data_(&data), cfg_(cfg) {
  const std::string bad = check_layout(cfg, ep.size(), dp.size(), data.size());
  FIVEFOLD_CHECK(bad.empty(), bad);
}

std::unique_ptr<nn::SummedUpdate> EpModel::make_update(const nn::AdamWConfig& cfg) {
  return std::make_unique<nn::SummedUpdate>(
      ops(), params_, cfg, std::vector<std::pair<unsigned, Communicator*>>{{nn::kSumDp, dp_}, {nn::kSumEp, ep_}});
}

nn::Batch EpModel::mine(const nn::Batch& global) const {
  const Tensor in = global.inputs.to(Device::host), tg = global.targets.to(Device::host);
  const std::int64_t B = in.dim(0), b = B / data_->size(), first = data_->rank() * b;
  return {in.narrow(first, b).clone(), tg.narrow(first, b).clone()};  // TUTORIAL: whole sequences
}

double EpModel::step(nn::Synchroniser& sync, const nn::Batch& global, const std::function<void()>& before_update) {
  const nn::Batch b = mine(global);
  const std::int64_t B = global.inputs.dim(0), T = global.inputs.dim(1), bl = b.inputs.dim(0);
  sync.zero_grad();
  const double share = static_cast<double>(bl) / static_cast<double>(B);
  // TUTORIAL: the gradient of the global mean: 1/(B*T) per token, b/B of the aux loss
  const double local = forward(b.inputs, b.targets, {}, 1.0 / static_cast<double>(B * T), share);
  backward();
  sync.finish();
  if (before_update) before_update();
  sync.update();
  Tensor v = ops().upload(Tensor::from_vector(std::vector<float>{static_cast<float>(local * share)}, {1}));
  {
    Uncounted quiet(*data_);  // the value is for the narration
    data_->all_reduce(v);
  }
  return v.to(Device::host).at<float>(0);
}

EpStats EpModel::stats() const {
  EpStats s;
  for (const EpMoeLayer* l : moe_layers()) {
    s.real_rows += l->stats().real_rows;
    s.buffer_rows += l->stats().buffer_rows;
    s.received_rows += l->stats().received_rows;
    s.expert_seconds += l->stats().expert_seconds;
    s.exchange_seconds += l->stats().exchange_seconds;
  }
  return s;
}

void EpModel::reset_stats() {
  for (EpMoeLayer* l : moe_layers()) l->reset_stats();
}

std::vector<std::int64_t> rows_to(const nn::Routing& r, std::int64_t T, std::int64_t first, std::int64_t b, int ep) {
  std::vector<std::int64_t> out(ep, 0);
  const int El = r.experts / ep;
  for (int e = 0; e < r.experts; ++e)
    for (std::int32_t t : r.expert_tokens[e])
      if (t >= first * T && t < (first + b) * T) ++out[e / El];
  return out;
}

}  // namespace fivefold::ch06
