// SPDX-License-Identifier: MIT
/// @file generation.hpp
/// @brief Greedy generation two ways: with a KV cache (prefill the prompt once, then one token
/// per step, attending over the cached keys and values) and by recomputing the full forward for
/// every new token. The two must give the same tokens; step 5 and exercise 2 check it.
///
/// The KV-cache attention is one small function, cache_attend(), so that the exercise can
/// replace it. Leaves out: batching requests of different lengths, paged caches, sampling.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "backends/ops.hpp"
#include "chapters/01_reference_model/traced_model.hpp"
#include "common/model_config.hpp"
#include "nn/attention.hpp"
#include "nn/layers.hpp"
#include "nn/moe.hpp"

namespace fivefold::ch01 {

/// The attention core of one inference step over a KV cache. In: q [B, T, H, hd] and k, v
/// [B, T, Hkv, hd], the projections of the T new tokens at positions start..start+T-1, NOT yet
/// rotated. Must: rotate q and k (RoPE at those positions), write k and v into cache slots
/// start..start+T-1, and attend over the whole cache. Out: out [B, T, H, hd], lse [B, H, T].
using CacheAttendFn = void (*)(Ops& ops, nn::KvCache& cache, Tensor& q, Tensor& k, const Tensor& v,
                               std::int64_t start, float rope_theta, Tensor& out, Tensor& lse);

/// The chapter's cache_attend (the solution of exercise 2).
void cache_attend(Ops& ops, nn::KvCache& cache, Tensor& q, Tensor& k, const Tensor& v, std::int64_t start,
                  float rope_theta, Tensor& out, Tensor& lse);

using nn::argmax_at;  // greedy next token of every row (nn/layers.hpp)

/// Greedy generation with a KV cache over the parameters of a registry (inference only).
class KvGenerator {
 public:
  /// The layers of @p cfg over @p reg; MoE layers route dropless (a per-sequence capacity would
  /// depend on how many tokens a step feeds). @p attend does the cached attention.
  KvGenerator(Ops& ops, nn::ParamRegistry& reg, const ModelConfig& cfg, CacheAttendFn attend = cache_attend);
  /// Extends each row of @p prompt int32 [B, P] (host) by @p new_tokens greedy tokens; returns
  /// [B, P + new_tokens] on the host. Step logits are kept in step_logits().
  Tensor generate(const Tensor& prompt, int new_tokens);
  /// Host fp32 [B, new_tokens, V]: the logits each new token was picked from.
  const Tensor& step_logits() const { return step_logits_; }
  /// Bytes of the KV caches of the last generate(): 2 * L * B * S * Hkv * hd * 4.
  std::int64_t cache_bytes() const { return cache_bytes_; }

 private:
  struct Layer {
    nn::RmsNorm norm1, norm2;
    nn::AttentionWeights w;
    std::optional<nn::SwiGluMlp> mlp;
    std::unique_ptr<nn::MoeLayer> moe;
    Tensor q, k, v, o, lse, y, h, out;  // this layer's buffers
  };
  const Tensor& layer_step(Layer& layer, const Tensor& x, std::int64_t start, nn::KvCache& cache);
  Ops* ops_;
  ModelConfig cfg_;
  CacheAttendFn attend_;
  nn::Embedding embed_;
  std::vector<Layer> layers_;
  nn::RmsNorm norm_;
  nn::LmHead head_;
  Tensor step_logits_;
  std::int64_t cache_bytes_ = 0;
};

/// Greedy generation without a cache: a full forward of the sequence so far for every new
/// token (the reference the cache must reproduce). MoE layers run dropless, as in KvGenerator.
/// Logits of the picks go to @p step_logits (host [B, new_tokens, V]) when given.
Tensor generate_full(TracedModel& model, const Tensor& prompt, int new_tokens, Tensor* step_logits = nullptr);

}  // namespace fivefold::ch01
