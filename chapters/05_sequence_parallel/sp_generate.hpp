// SPDX-License-Identifier: MIT
/// @file sp_generate.hpp
/// @brief Long-context inference with context parallelism: the prompt is prefilled by ring (or
/// zigzag) attention, each rank keeping the keys/values of its own positions; decoding then
/// leaves the KV cache sharded along the sequence. Every rank runs the new token through the
/// model (it is one token: the compute is cheap, the context is what is large); in each layer its
/// query meets every rank's shard, each rank computes its partial attention (out_r, lse_r) over
/// its keys, an all-gather brings every rank's partials, and the log-sum-exp merge (in rank
/// order, so every rank gets the same bits) gives the attention over the whole context.
///
/// Which rank keeps a new token's k/v: round robin, token P + i on rank i % sp, so the shards
/// stay within one token of each other. Bytes per generated token and layer, per rank: one
/// all-gather of B H hd floats (the partial output) and one of B H floats (its lse).
#pragma once

#include <cstdint>
#include <vector>

#include "chapters/05_sequence_parallel/sp_layout.hpp"
#include "common/model_config.hpp"
#include "common/tensor.hpp"
#include "backends/communicator.hpp"
#include "backends/ops.hpp"

namespace fivefold::ch05 {

/// What one context-parallel generation measured on this rank.
struct CpGenStats {
  std::vector<std::int64_t> kv_slots;  ///< positions whose k/v this rank holds, after the prefill and after each token
  std::int64_t kv_bytes_per_slot = 0;  ///< k and v of one position over every layer: 2 L B Hkv hd * 4
  OpCount prefill;                     ///< sends of the prefill's ring (isend)
  OpCount decode;                      ///< all-gathers of the decode's merges
};

/// Greedy generation of @p new_tokens tokens after @p prompt int32 [B, P] (host, the same on
/// every rank), the prompt prefilled with @p mode (ring or zigzag) over @p sp, for the model
/// @p cfg with its initial parameters. Returns [B, P + new_tokens] on the host (the same on every
/// rank). P must split under @p mode (check_layout with T = P).
Tensor cp_generate(Ops& ops, Communicator& sp, const ModelConfig& cfg, SpMode mode, const Tensor& prompt,
                   int new_tokens, CpGenStats* stats = nullptr);

/// The decode's all-gather payload per generated token on one rank: L layers x (B H hd + B H) x 4.
std::int64_t decode_bytes_per_token(const ModelConfig& cfg, std::int64_t batch);

}  // namespace fivefold::ch05
