// SPDX-License-Identifier: MIT
// The model unit by unit over caller-provided parameter storage, with hooks around each unit.
// Forward and backward mirror nn::Model::forward/backward line for line.
#include "chapters/02_data_parallel/unit_model.hpp"

#include "common/check.hpp"
#include "nn/attention.hpp"
#include "common/trace.hpp"

namespace fivefold::ch02 {

namespace {

void call(const std::function<void(int)>& f, int u) {
  if (f) f(u);
}

}  // namespace

UnitModel::UnitModel(Ops& ops, const ModelConfig& cfg, const FlatLayout& layout, const std::vector<Tensor>& values,
                     const std::vector<Tensor>& grads)
    : ops_(&ops), reg_(ops, cfg.seed) {
  cfg.validate();
  FIVEFOLD_CHECK(cfg.experts == 0, "UnitModel: MoE layers are not supported by data parallelism here (--experts ",
                 cfg.experts, "); use a dense model");
  const int U = layout.num_units();
  FIVEFOLD_CHECK(U == cfg.layers + 2 && static_cast<int>(values.size()) == U && static_cast<int>(grads.size()) == U,
                 "UnitModel: ", U, " units, ", values.size(), " value and ", grads.size(),
                 " grad buffers for ", cfg.layers, " layers; expected layers + 2 of each");
  // TUTORIAL: the registry holds VIEWS into the caller's storage, not memory of its own.
  for (int u = 0; u < U; ++u) {
    const Unit& unit = layout.unit(u);
    FIVEFOLD_CHECK(values[u].numel() >= unit.numel && grads[u].numel() >= unit.numel, "UnitModel: unit ", unit.name,
                   " needs ", unit.numel, " elements, got ", values[u].str(), " and ", grads[u].str());
    std::int64_t at = 0;
    for (const nn::ParamSpec& p : unit.params) {
      const std::int64_t len = shape_numel(p.shape);
      reg_.all().push_back(nn::Param{p.name, values[u].flat(at, len).view(p.shape), grads[u].flat(at, len).view(p.shape)});
      at += len;
    }
    names_.push_back(unit.name);
    fwd_names_.push_back("fwd " + unit.name);
    bwd_names_.push_back("bwd " + unit.name);
  }
  const float eps = static_cast<float>(cfg.norm_eps);
  embed_ = std::make_unique<nn::Embedding>(ops, reg_.get("embed_tokens.weight"));
  layers_.reserve(cfg.layers);
  for (int l = 0; l < cfg.layers; ++l) layers_.emplace_back(ops, reg_, cfg, l);
  norm_ = std::make_unique<nn::RmsNorm>(ops, reg_.get("norm.weight"), eps);
  head_ = std::make_unique<nn::LmHead>(ops, reg_.get("lm_head.weight"));
}

double UnitModel::forward(const Tensor& tokens, const Tensor& targets, const UnitHooks& hooks) {
  FIVEFOLD_CHECK(tokens.ndim() == 2 && tokens.dtype() == DType::i32 && targets.shape() == tokens.shape(),
                 "UnitModel: tokens ", tokens.str(), " and targets ", targets.str(), " must be int32 [b, T]");
  const int U = num_units();
  tokens_ = ops_->upload(tokens);
  targets_ = ops_->upload(targets);
  if (!pos_.defined() || pos_.numel() != tokens.dim(1)) pos_ = nn::positions(*ops_, 0, tokens.dim(1));
  double loss = 0.0;
  for (int u = 0; u < U; ++u) {
    call(hooks.before_forward, u);
    {
      TraceSpan span(fwd_names_[u].c_str(), "compute");
      if (u == 0) {
        x_ = &embed_->forward(tokens_);  // [b, T, C]
      } else if (u < U - 1) {
        x_ = &layers_[u - 1].forward(*x_, pos_);  // [b, T, C]
      } else {
        head_->forward(norm_->forward(*x_));  // [b, T, V]
        loss = head_->loss(targets_);         // mean over the b*T tokens of this rank
      }
    }
    call(hooks.after_forward, u);
  }
  return loss;
}

void UnitModel::backward(const UnitHooks& hooks) {
  const int U = num_units();
  const Tensor* dx = nullptr;
  for (int u = U - 1; u >= 0; --u) {
    call(hooks.before_backward, u);
    {
      TraceSpan span(bwd_names_[u].c_str(), "compute");
      if (u == U - 1) {
        dx = &norm_->backward(head_->backward());  // [b, T, C]
      } else if (u > 0) {
        dx = &layers_[u - 1].backward(*dx);
      } else {
        embed_->backward(*dx);
      }
    }
    call(hooks.after_backward, u);
  }
}

}  // namespace fivefold::ch02
