// SPDX-License-Identifier: MIT
/// @file costs.hpp
/// @brief Chapter 01's formulas: parameter counts, training FLOPs per token, and the bytes of
/// parameters, gradients, AdamW states and activations of the serial reference model.
///
/// Every number here is derived in chapters/01_reference_model/README.md and compared with a
/// measurement by the chapter (counts with the parameter registry, bytes with the tensor
/// allocator's counters). bench_step uses flops_per_token() for its FLOP/s counter.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/model_config.hpp"

namespace fivefold::ch01 {

/// The "124M" model of bench_step and the README (GPT-2 small's size with Llama blocks):
/// V 32000, C 768, F 2048, L 12, H 12, Hkv 4, T 1024, B 8.
ModelConfig config_124m();

/// One group of parameters with a closed-form count.
struct ParamGroup {
  std::string name;        ///< e.g. "attention (q, k, v, o)"
  std::string formula;     ///< e.g. "L(2C^2 + 2C*Hkv*hd)"
  std::int64_t count = 0;  ///< number of elements
  std::string match;       ///< the group's parameter names contain this ("=name": exactly this name)
};

/// Parameter counts by group: embedding, attention, norms, MLP (dense) or experts + router
/// (MoE), final norm, LM head. Their sum is param_count().
std::vector<ParamGroup> param_groups(const ModelConfig& cfg);
/// N, the total number of parameters.
std::int64_t param_count(const ModelConfig& cfg);
/// Parameters that multiply every token (all but the embedding table and the norm gains, and
/// only k of the E experts of a MoE layer): the "N" of the 6N rule.
std::int64_t matmul_params_per_token(const ModelConfig& cfg);

/// Training FLOPs per token (forward + backward) at sequence length @p seq:
/// 6 * matmul_params_per_token + 12 * L * T * C (the attention scores and their use, counting
/// every one of the T x T query/key pairs, i.e. no causal halving: our kernels compute them all).
double train_flops_per_token(const ModelConfig& cfg, std::int64_t seq);
/// The attention term alone, 12 * L * T * C.
double attention_flops_per_token(const ModelConfig& cfg, std::int64_t seq);

/// The model state in bytes (fp32): 4N each for parameters and gradients, 8N for AdamW (m, v).
struct StateBytes {
  std::int64_t params = 0;  ///< 4N
  std::int64_t grads = 0;   ///< 4N
  std::int64_t adam = 0;    ///< 8N
};
/// StateBytes of @p cfg.
StateBytes state_bytes(const ModelConfig& cfg);

/// Activation bytes of one training step of B*T tokens, split the way the chapter measures them.
/// @p assignments: per MoE layer (in moe_layers() order) the number of (token, expert) pairs
/// the experts processed (B*T*k when dropless; fewer when the capacity drops some). Empty for
/// a dense model; when empty for a MoE model, dropless is assumed.
struct ActivationBytes {
  std::int64_t saved = 0;      ///< what the forward keeps for the backward, textbook minimum
  std::int64_t forward = 0;    ///< what THIS implementation's forward + loss allocates (measured)
  std::int64_t backward = 0;   ///< the backward's buffers (dx of every block; measured)
};
/// ActivationBytes of @p cfg (see the README's memory section for every term).
ActivationBytes activation_bytes(const ModelConfig& cfg, const std::vector<std::int64_t>& assignments = {});
/// What one rank holds at the peak of a serial training step of @p cfg: the model state
/// (16N) plus this implementation's forward and backward activations (dropless MoE), in bytes.
/// The chapters' memory check before a run starts (ChapterSpec::memory) is built on it.
double training_bytes(const ModelConfig& cfg);

}  // namespace fivefold::ch01
