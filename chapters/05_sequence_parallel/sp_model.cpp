// SPDX-License-Identifier: MIT
// The model under a sequence-parallel mode and its training step.
#include "chapters/05_sequence_parallel/sp_model.hpp"

#include "chapters/03_tensor_parallel/tp_layout.hpp"
#include "chapters/05_sequence_parallel/megatron_sp.hpp"
#include "chapters/05_sequence_parallel/ulysses.hpp"
#include "common/check.hpp"

namespace fivefold::ch05 {

std::map<std::string, OpCount> step_comm(SpMode mode, const ModelConfig& cfg, int sp) {
  const std::int64_t B = cfg.batch, T = cfg.seq, C = cfg.dim, L = cfg.layers;
  std::int64_t all_params = 0;
  for (const nn::ParamSpec& p : nn::model_param_specs(cfg)) {
    std::int64_t n = 1;
    for (std::int64_t d : p.shape) n *= d;
    all_params += n;
  }
  std::map<std::string, OpCount> c;
  OpCount& ar = c["all_reduce"];
  if (mode == SpMode::megatron) {
    c["all_gather"] = {4 * L + 2, (4 * L + 2) * B * (T / sp) * C * 4};
    c["reduce_scatter"] = {4 * L + 2, (4 * L + 2) * B * T * C * 4};
    ar = {3, 3 * B * T * 4};  // the vocab-parallel loss: max, sum of exponentials, target logit
    if (sp > 1) ar = {ar.calls + 1, ar.payload_bytes + (2 * L + 1) * C * 4};  // the norm gains
    return c;
  }
  if (sp > 1) ar = {1, all_params * 4};
  if (mode == SpMode::ulysses) {
    c["all_to_all"] = {8 * L, 2 * L * UlyssesAttention::bytes_per_layer(cfg, sp, B, T)};
  } else if (sp > 1) {
    const OpCount hops{L * (2 * (sp - 1) + 4 * sp - 2), L * (RingAttention::forward_bytes(cfg, sp, B, T) +
                                                            RingAttention::backward_bytes(cfg, sp, B, T))};
    c["isend"] = hops;
    c["irecv"] = hops;
  }
  return c;
}

SpParts::SpParts(Ops& ops, Communicator& sp, const ModelConfig& cfg, SpMode mode, std::int64_t T)
    : nn::SerialParts(ops, cfg), ops_(&ops), sp_(&sp), cfg_(cfg), mode_(mode), T_(T), maps_(ops) {}

std::unique_ptr<nn::Block> SpParts::attention(nn::ParamRegistry& params, int l) {
  nn::AttentionWeights w = nn::attention_weights(params, "layers." + std::to_string(l) + ".self_attn");
  if (mode_ == SpMode::ulysses) {
    const std::vector<std::int32_t> all = gathered_positions(mode_, T_, sp_->size());
    Tensor pos = ops_->upload(Tensor::from_vector(all, {T_}));
    return std::make_unique<UlyssesAttention>(*ops_, *sp_, cfg_, std::move(w), std::move(pos), maps_, buf_);
  }
  auto ring = std::make_unique<RingAttention>(*ops_, *sp_, cfg_, std::move(w), mode_, T_);
  rings_.push_back(ring.get());
  return ring;
}

SpStorage::SpStorage(Ops& ops, Communicator& sp, const ModelConfig& cfg, SpMode mode) {
  const std::string bad = check_layout(mode, cfg, sp.size());
  FIVEFOLD_CHECK(bad.empty(), bad);
  if (mode == SpMode::megatron) {
    params_ = std::make_unique<ch03::TpParams>(ops, cfg, sp.rank(), sp.size());
    mark_norms_partial(*params_);  // TUTORIAL: a norm saw only my positions: its gain gradient is partial
    parts_ = std::make_unique<MegatronSpParts>(ops, sp, cfg);
  } else {
    params_ = std::make_unique<nn::ParamRegistry>(ops, cfg.seed);
    params_->add_model(cfg);
    parts_ = std::make_unique<SpParts>(ops, sp, cfg, mode, cfg.seq);
  }
}

SpModel::SpModel(Ops& ops, Communicator& sp, const ModelConfig& cfg, SpMode mode)
    : SpStorage(ops, sp, cfg, mode), nn::Decoder(ops, cfg, *params_, *parts_), sp_(&sp), mode_(mode), T_(cfg.seq) {
  if (mode != SpMode::megatron) {
    positions_ = local_positions(mode, T_, sp.size(), sp.rank());
    const auto n = static_cast<std::int64_t>(positions_.size());
    set_positions(ops.upload(Tensor::from_vector(positions_, {n})));  // TUTORIAL: RoPE and the mask see global positions
  }
}

std::unique_ptr<nn::SummedUpdate> SpModel::make_update(const nn::AdamWConfig& cfg) {
  const unsigned axis = mode_ == SpMode::megatron ? nn::kSumTp : nn::kSumSp;
  return std::make_unique<nn::SummedUpdate>(ops(), *params_, cfg,
                                            std::vector<std::pair<unsigned, Communicator*>>{{axis, sp_}});
}

nn::Batch SpModel::mine(const nn::Batch& global) const {
  return mode_ == SpMode::megatron ? global : local_batch(global, positions_);
}

double SpModel::local_forward(const nn::Batch& global) {
  FIVEFOLD_CHECK(global.inputs.dim(1) == T_, "SpModel: sequences of ", global.inputs.dim(1), " but the model was laid out for ", T_);
  if (mode_ == SpMode::megatron) return forward(global.inputs, global.targets);  // all T on every rank's head
  const nn::Batch b = mine(global);
  const std::int64_t B = global.inputs.dim(0);
  // TUTORIAL: the gradient of the global mean: 1/(B*T) per token, whichever rank holds it
  const double local = forward(b.inputs, b.targets, {}, 1.0 / static_cast<double>(B * T_));
  Tensor share = Tensor::from_vector(std::vector<float>{static_cast<float>(local * b.inputs.dim(1) / T_)}, {1});
  share = ops().upload(share);
  {
    Uncounted quiet(*sp_);  // the value is for the narration; the gradients never need it
    sp_->all_reduce(share);
  }
  return share.to(Device::host).at<float>(0);
}

double SpModel::forward_only(const nn::Batch& global) { return local_forward(global); }

double SpModel::step(nn::Synchroniser& sync, const nn::Batch& global, const std::function<void()>& before_update) {
  sync.zero_grad();
  const double loss = local_forward(global);
  backward();
  sync.finish();  // TUTORIAL: every rank saw other positions: sum the gradients over the group
  if (before_update) before_update();
  sync.update();
  return loss;
}

RingWork SpModel::ring_work() const {
  RingWork w;
  if (mode_ != SpMode::ring && mode_ != SpMode::zigzag) return w;
  for (const RingAttention* r : static_cast<const SpParts&>(*parts_).rings()) {
    w.pairs += r->work().pairs;
    w.skipped += r->work().skipped;
    w.scores += r->work().scores;
    w.seconds += r->work().seconds;
  }
  return w;
}

void SpModel::reset_ring_work() {
  if (mode_ != SpMode::ring && mode_ != SpMode::zigzag) return;
  for (RingAttention* r : static_cast<SpParts&>(*parts_).rings()) r->reset_work();
}

}  // namespace fivefold::ch05
