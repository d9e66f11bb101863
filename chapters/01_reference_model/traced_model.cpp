// SPDX-License-Identifier: MIT
// The reference model block by block (see traced_model.hpp). Each block runs inside a
// TraceSpan; with --trace on a GPU we synchronise before a span closes so that it measures the
// block's work and not only its kernel launches.
#include "chapters/01_reference_model/traced_model.hpp"

#include "common/check.hpp"
#include "common/trace.hpp"

namespace fivefold::ch01 {

namespace {
/// Waits for the device when tracing, so the enclosing span covers the work.
void settle(Ops& ops) {
  if (Tracer::instance().enabled()) ops.synchronize();
}
}  // namespace

TracedModel::TracedModel(Ops& ops, nn::ParamRegistry& reg, const ModelConfig& cfg)
    : ops_(&ops),
      cfg_(cfg),
      embed_(ops, reg.get("embed_tokens.weight")),
      norm_(ops, reg.get("norm.weight"), static_cast<float>(cfg.norm_eps)),
      head_(ops, reg.get("lm_head.weight")) {
  layers_.reserve(cfg.layers);
  for (int l = 0; l < cfg.layers; ++l) {
    layers_.emplace_back(ops, reg, cfg_, l);
    fwd_names_.push_back("layers." + std::to_string(l) + " forward");
    bwd_names_.push_back("layers." + std::to_string(l) + " backward");
  }
}

void TracedModel::note(const std::string& what, const Tensor& t) {
  if (log_) log_rows_.push_back({what, t.shape(), t.dtype()});
}

void TracedModel::set_capacity_factor(double cf) {
  for (nn::DecoderLayer& layer : layers_)
    if (layer.moe()) layer.moe()->set_capacity_factor(cf);
}

const Tensor& TracedModel::forward_logits(const Tensor& tokens) {
  FIVEFOLD_CHECK(tokens.ndim() == 2 && tokens.dtype() == DType::i32, "TracedModel: tokens ", tokens.str(),
                 " must be int32 [B, T]");
  tokens_ = ops_->upload(tokens);                                           // [B, T] int32
  if (!pos_.defined() || pos_.numel() != tokens.dim(1)) pos_ = nn::positions(*ops_, 0, tokens.dim(1));  // [T]
  note("tokens", tokens_);
  const Tensor* x = nullptr;
  {
    TraceSpan span("embedding forward", "compute");
    x = &embed_.forward(tokens_);                                           // [B, T, C]
    settle(*ops_);
  }
  note("embed_tokens.weight[tokens] = x", *x);
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    TraceSpan span(fwd_names_[l].c_str(), "compute");
    x = &layers_[l].forward(*x, pos_);  // TUTORIAL: x + attn(norm(x)), then + mlp(norm(.)); [B, T, C]
    settle(*ops_);
    note("layers." + std::to_string(l) + " output x", *x);
  }
  TraceSpan span("final norm + lm_head forward", "compute");
  const Tensor& h = norm_.forward(*x);                                      // [B, T, C]
  note("norm(x)", h);
  const Tensor& logits = head_.forward(h);                                  // [B, T, V]
  settle(*ops_);
  note("logits = norm(x) lm_head^T", logits);
  return logits;
}

double TracedModel::forward(const Tensor& tokens, const Tensor& targets) {
  FIVEFOLD_CHECK(targets.shape() == tokens.shape() && targets.dtype() == DType::i32, "TracedModel: targets ",
                 targets.str(), " must be int32 of the tokens' shape ", tokens.str());
  forward_logits(tokens);
  targets_ = ops_->upload(targets);
  {
    TraceSpan span("cross-entropy", "compute");
    ce_ = head_.loss(targets_);  // TUTORIAL: mean over the B*T tokens of logsumexp - logit[target]
  }
  aux_ = 0.0;
  for (const nn::DecoderLayer& layer : layers_) aux_ += layer.aux_loss();  // MoE load balancing
  return ce_ + aux_;
}

void TracedModel::backward() {
  const Tensor* dx = nullptr;
  {
    TraceSpan span("lm_head + final norm backward", "compute");
    const Tensor& dh = head_.backward();  // [B, T, C]; lm_head grad accumulates
    note("d loss / d norm(x)", dh);
    dx = &norm_.backward(dh);             // [B, T, C]
    settle(*ops_);
  }
  note("d loss / d x (last layer output)", *dx);
  for (std::size_t l = layers_.size(); l-- > 0;) {  // TUTORIAL: the layers in reverse order
    TraceSpan span(bwd_names_[l].c_str(), "compute");
    dx = &layers_[l].backward(*dx);
    settle(*ops_);
    note("d loss / d layers." + std::to_string(l) + " input", *dx);
  }
  TraceSpan span("embedding backward", "compute");
  embed_.backward(*dx);  // scatter-add into the rows of the tokens that were looked up
  settle(*ops_);
}

}  // namespace fivefold::ch01
