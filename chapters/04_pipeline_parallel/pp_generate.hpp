// SPDX-License-Identifier: MIT
/// @file pp_generate.hpp
/// @brief Greedy generation through a pipelined model: each stage runs its layers over its own
/// KV caches and passes the hidden states on; the last stage picks the next token and sends it
/// back to the first. Several requests in flight keep every stage busy.
///
/// One request alone crosses the stages in turn: a token's latency is the sum of the stage
/// times plus p hops (p-1 forward, one back), and only one stage works at a time. With R
/// requests the first stage starts request r+1 while request r is on the next stage, so up to
/// p requests are computed at once: throughput grows with R up to about p times one request's.
#pragma once

#include <vector>

#include "chapters/04_pipeline_parallel/pp_link.hpp"
#include "nn/decoder.hpp"

namespace fivefold::ch04 {

/// What a pipelined generation measured on this rank.
struct GenerationTimes {
  double seconds = 0.0;       ///< the whole generation (prefill included), from a common start
  double prefill_seconds = 0.0;  ///< until the first stage had every request's first new token
};

/// Extends every row of @p prompts (int32 [R*b, P], host, the same on every rank) by
/// @p new_tokens greedy tokens, its R = @p requests groups of b rows going through the pipeline
/// as separate requests in flight. @p stage holds one chunk (this rank's layers; v = 1) of a
/// pipeline over link.group(). Returns [R*b, P + new_tokens] on the first stage (rank 0), an
/// undefined tensor elsewhere. MoE layers route dropless, as in chapter 01's generation.
Tensor pipelined_generate(nn::Decoder& stage, StageLink& link, const Tensor& prompts, int requests, int new_tokens,
                          GenerationTimes* times = nullptr);

}  // namespace fivefold::ch04
