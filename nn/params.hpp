// SPDX-License-Identifier: MIT
/// @file params.hpp
/// @brief The parameter registry: every tensor of the model by its name (docs/reference.md), with its
/// value and gradient on the backend's device, initialised deterministically from the seed.
///
/// Initialisation rule (param_init_block), decided by the name alone so that a shard drawn on
/// its own equals the slice of the full tensor: names ending in "norm.weight" (the RMSNorm
/// gains) are ones; every other weight (embedding, projections, router, experts, lm_head) is
/// normal(0, 0.02) drawn with rng::draw at the element's flat index in the full tensor.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "backends/ops.hpp"
#include "common/model_config.hpp"
#include "common/tensor.hpp"

namespace fivefold::nn {

/// Standard deviation of the normal initialisation of every non-norm weight.
inline constexpr float kInitStd = 0.02f;

/// Name and full (unsharded) shape of one parameter.
struct ParamSpec {
  std::string name;  ///< HF Llama name, e.g. "layers.0.self_attn.q_proj.weight"
  Shape shape;       ///< full shape, e.g. [H*hd, C]
};

/// Every parameter of the reference model for @p cfg, in a fixed order: embed_tokens, then per
/// layer input_layernorm, q/k/v/o_proj, post_attention_layernorm, the MLP (dense gate/up/down,
/// or MoE router then experts.e.gate/up/down), then norm, lm_head.
std::vector<ParamSpec> model_param_specs(const ModelConfig& cfg);

/// The block [starts, starts+sizes) of parameter @p name of full shape @p full, drawn on the
/// host by the initialisation rule above (fp32 host tensor of shape @p sizes).
Tensor param_init_block(std::uint64_t seed, const std::string& name, const Shape& full, const Shape& starts,
                        const Shape& sizes);
/// The whole parameter (param_init_block over the full shape).
Tensor param_init(std::uint64_t seed, const std::string& name, const Shape& full);

/// Axes of the process grid a parameter's gradient is summed over (a bit set). The ranks along
/// them hold the same parameter (or the same shard) and saw different tokens.
enum SumAxes : unsigned {
  kSumDp = 1u,  ///< data parallel: different sequences
  kSumSp = 2u,  ///< sequence parallel: different positions of the same sequences
  kSumEp = 4u,  ///< expert parallel: different sequences (dense weights only)
  kSumTp = 8u,  ///< tensor parallel: a replicated weight that saw only part of the work (norms under Megatron-SP)
};

/// Where a parameter's gradient is summed by default: an expert's weights over dp and sp (the
/// ranks that hold the same experts), every other weight over dp, sp and ep. A part that makes a
/// weight's gradient partial in another way (a norm under sequence parallelism) adds its axis.
unsigned default_sum_axes(const std::string& name);

/// One parameter: value and gradient (same shape) on the backend's device, and what it is a
/// piece of: its full shape, where this rank's block starts, and the group its gradient is
/// summed over.
struct Param {
  std::string name;  ///< HF Llama name (docs/reference.md)
  Tensor value;      ///< the weights (this rank's block of them)
  Tensor grad;       ///< d loss / d value; backward passes ACCUMULATE into it
  Shape full{};      ///< the whole parameter's shape (value's own shape when not sharded)
  Shape start{};     ///< where value starts inside the full tensor, per dimension
  unsigned sum_axes = kSumDp | kSumSp | kSumEp;  ///< SumAxes its gradient is summed over
  /// True when this rank holds only a block of the parameter.
  bool sharded() const { return full != value.shape(); }
};

/// The expert index e of a MoE expert's parameter "layers.l.moe.experts.e.<...>", or -1 for
/// any other parameter.
int expert_index(const std::string& name);

/// Owns the parameters; references to its Params stay valid while it lives.
class ParamRegistry {
 public:
  /// Parameters will live on @p ops.device(), drawn from @p seed.
  ParamRegistry(Ops& ops, std::uint64_t seed) : ops_(&ops), seed_(seed) {}
  /// Adds @p name of shape @p shape, initialised by the rule above; grad zero.
  Param& add(const std::string& name, const Shape& shape);
  /// Adds this rank's block [starts, starts+sizes) of @p name of full shape @p full, drawn with
  /// param_init_block (so it equals that slice of the full parameter); grad zero.
  Param& add_block(const std::string& name, const Shape& full, const Shape& starts, const Shape& sizes);
  /// Adds @p p as it is (e.g. views into storage the caller owns); full/start default to the
  /// value's own shape and zeros when empty.
  Param& adopt(Param p);
  /// Full shape of @p name (throws naming it if absent).
  const Shape& full_shape(const std::string& name) { return get(name).full; }
  /// Adds every parameter of model_param_specs(@p cfg).
  void add_model(const ModelConfig& cfg);
  /// The parameter called @p name (throws naming it if absent).
  Param& get(const std::string& name);
  /// True when @p name is registered.
  bool contains(const std::string& name) const;
  /// All parameters in registration order.
  std::deque<Param>& all() { return params_; }
  /// All parameters in registration order.
  const std::deque<Param>& all() const { return params_; }
  /// Sets every gradient to zero.
  void zero_grad();
  /// Total number of parameter elements.
  std::int64_t numel() const;

 private:
  Ops* ops_;
  std::uint64_t seed_;
  std::deque<Param> params_;
};

}  // namespace fivefold::nn
