// SPDX-License-Identifier: MIT
// The parameter registry: names and shapes (docs/reference.md), the initialisation rule, grads.
#include "nn/params.hpp"

#include "common/check.hpp"
#include "common/rng.hpp"

namespace fivefold::nn {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void add_mlp(std::vector<ParamSpec>& out, const std::string& prefix, std::int64_t C, std::int64_t F) {
  out.push_back({prefix + ".gate_proj.weight", {F, C}});
  out.push_back({prefix + ".up_proj.weight", {F, C}});
  out.push_back({prefix + ".down_proj.weight", {C, F}});
}

}  // namespace

std::vector<ParamSpec> model_param_specs(const ModelConfig& cfg) {
  const std::int64_t V = cfg.vocab, C = cfg.dim, hd = cfg.head_dim(), H = cfg.heads, Hkv = cfg.kv_heads;
  std::vector<ParamSpec> out;
  out.push_back({"embed_tokens.weight", {V, C}});
  for (int l = 0; l < cfg.layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    out.push_back({p + "input_layernorm.weight", {C}});
    out.push_back({p + "self_attn.q_proj.weight", {H * hd, C}});
    out.push_back({p + "self_attn.k_proj.weight", {Hkv * hd, C}});
    out.push_back({p + "self_attn.v_proj.weight", {Hkv * hd, C}});
    out.push_back({p + "self_attn.o_proj.weight", {C, H * hd}});
    out.push_back({p + "post_attention_layernorm.weight", {C}});
    if (cfg.is_moe_layer(l)) {
      out.push_back({p + "moe.router.weight", {cfg.experts, C}});
      for (int e = 0; e < cfg.experts; ++e) add_mlp(out, p + "moe.experts." + std::to_string(e), C, cfg.ffn);
    } else {
      add_mlp(out, p + "mlp", C, cfg.ffn);
    }
  }
  out.push_back({"norm.weight", {C}});
  out.push_back({"lm_head.weight", {V, C}});
  return out;
}

Tensor param_init_block(std::uint64_t seed, const std::string& name, const Shape& full, const Shape& starts,
                        const Shape& sizes) {
  if (ends_with(name, "norm.weight")) {  // RMSNorm gains start at 1
    Tensor t = Tensor::empty(sizes);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.at<float>(i) = 1.0f;
    return t;
  }
  return rng::draw_block(seed, name, full, starts, sizes, rng::Dist::normal, 0.0f, kInitStd);
}

Tensor param_init(std::uint64_t seed, const std::string& name, const Shape& full) {
  return param_init_block(seed, name, full, Shape(full.size(), 0), full);
}

int expert_index(const std::string& name) {
  const std::string key = ".moe.experts.";
  const std::size_t at = name.find(key);
  return at == std::string::npos ? -1 : std::stoi(name.substr(at + key.size()));
}

unsigned default_sum_axes(const std::string& name) {
  return expert_index(name) >= 0 ? (kSumDp | kSumSp) : (kSumDp | kSumSp | kSumEp);
}

Param& ParamRegistry::add(const std::string& name, const Shape& shape) {
  return add_block(name, shape, Shape(shape.size(), 0), shape);
}

Param& ParamRegistry::add_block(const std::string& name, const Shape& full, const Shape& starts, const Shape& sizes) {
  Param p;
  p.name = name;
  // TUTORIAL: the RNG is keyed by the element's index in the FULL tensor, so a block drawn on its
  // own is bit for bit the slice of the whole parameter.
  p.value = ops_->upload(param_init_block(seed_, name, full, starts, sizes));
  p.grad = ops_->zeros(sizes);
  p.full = full;
  p.start = starts;
  return adopt(std::move(p));
}

Param& ParamRegistry::adopt(Param p) {
  FIVEFOLD_CHECK(!contains(p.name), "parameter '", p.name, "' registered twice");
  if (p.full.empty()) p.full = p.value.shape();
  if (p.start.empty()) p.start = Shape(p.full.size(), 0);
  p.sum_axes = default_sum_axes(p.name);
  params_.push_back(std::move(p));
  return params_.back();
}

void ParamRegistry::add_model(const ModelConfig& cfg) {
  for (const ParamSpec& s : model_param_specs(cfg)) add(s.name, s.shape);
}

Param& ParamRegistry::get(const std::string& name) {
  for (Param& p : params_)
    if (p.name == name) return p;
  FIVEFOLD_CHECK(false, "no parameter called '", name, "' (", params_.size(), " registered)");
  return params_.front();
}

bool ParamRegistry::contains(const std::string& name) const {
  for (const Param& p : params_)
    if (p.name == name) return true;
  return false;
}

void ParamRegistry::zero_grad() {
  for (Param& p : params_) ops_->fill(p.grad, 0.0f);
}

std::int64_t ParamRegistry::numel() const {
  std::int64_t n = 0;
  for (const Param& p : params_) n += p.value.numel();
  return n;
}

}  // namespace fivefold::nn
