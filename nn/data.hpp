// SPDX-License-Identifier: MIT
/// @file data.hpp
/// @brief The synthetic training data: a deterministic token stream from the seed with a
/// structure a small model learns in a few dozen steps.
///
/// The task (a noisy affine bigram): sequence s has T+1 tokens x_0..x_T with
/// x_0 = rng::integer(seed, "data.first", s, V) and, for t >= 1, x_t = (3*x_{t-1} + 1) mod V,
/// except with probability 0.1 (rng::uniform(seed, "data.noise", s*(T+1)+t) < 0.1) where x_t
/// is a fresh rng::integer(seed, "data.token", s*(T+1)+t, V). inputs = x_0..x_{T-1},
/// targets = x_1..x_T. A model that learned the rule reaches a loss near
/// H = -(0.9 + 0.1/V) ln(0.9 + 0.1/V) - (V-1)(0.1/V) ln(0.1/V) (about 0.74 nats for V = 64),
/// down from ln V (4.16) at initialisation.
#pragma once

#include <cstdint>

#include "common/model_config.hpp"
#include "common/tensor.hpp"

namespace fivefold::nn {

/// One batch of the stream (host int32 tensors).
struct Batch {
  Tensor inputs;   ///< [B, T]
  Tensor targets;  ///< [B, T]
};

/// Sequences first_sequence .. first_sequence + batch - 1 of the stream (a step k of a
/// "stream" run passes k * batch; a "fixed" run always 0).
Batch synthetic_batch(std::uint64_t seed, int vocab, int batch, int seq, std::int64_t first_sequence = 0);

/// Training step @p k's global batch of a "stream" run of @p cfg: sequences k*B .. k*B + B - 1.
Batch stream_batch(const ModelConfig& cfg, int k);

/// The entropy floor of the task in nats (the best achievable mean loss).
double synthetic_entropy(int vocab);

}  // namespace fivefold::nn
