// SPDX-License-Identifier: MIT
/// @file tp_costs.hpp
/// @brief The chapter's analytic formulas: all-reduce calls and payload bytes of every TP block
/// (forward and backward), of a whole training step and of greedy generation, the bytes a ring
/// all-reduce puts on each rank's link, and the parameter elements a rank holds.
///
/// N = B*T tokens, 4 bytes per fp32. Payload = the buffer a rank hands to the collective
/// (backends/communicator.hpp); per call of a ring all-reduce of S bytes each rank sends
/// 2(tp-1)/tp * S over its link.
/// | block              | forward                 | backward               |
/// |--------------------|-------------------------|------------------------|
/// | column-parallel    | 0                       | 1 x [N, in] (f)        |
/// | row-parallel       | 1 x [N, out] (g)        | 0                      |
/// | attention, MLP     | 1 x [N, C] (g)          | 1 x [N, C] (f)         |
/// | embedding          | 1 x [N, C]              | 0                      |
/// | lm head + loss     | 3 x [N] (max, sum, z)   | 1 x [N, C] (f)         |
/// Model, per training step: forward 2L+4 calls, 4NC(2L+1) + 12N bytes; backward 2L+1 calls,
/// 4NC(2L+1) bytes.
#pragma once

#include <cstdint>

#include "common/model_config.hpp"

namespace fivefold::ch03 {

/// Calls and payload bytes of one collective.
struct CommCost {
  std::int64_t calls = 0;  ///< number of calls
  std::int64_t bytes = 0;  ///< summed payload bytes
  /// Adds @p o.
  CommCost& operator+=(const CommCost& o) {
    calls += o.calls;
    bytes += o.bytes;
    return *this;
  }
};

/// One all-reduce of @p elems floats.
inline CommCost all_reduce_of(std::int64_t elems) { return {1, 4 * elems}; }

/// Column-parallel linear, forward (none) and backward (f: all-reduce of dx [N, in]).
CommCost column_forward_cost();
/// See column_forward_cost().
CommCost column_backward_cost(std::int64_t n, std::int64_t in);
/// Row-parallel linear, forward (g: all-reduce of y [N, out]) and backward (none).
CommCost row_forward_cost(std::int64_t n, std::int64_t out);
/// See row_forward_cost().
CommCost row_backward_cost();
/// Attention or MLP block, forward or backward: one all-reduce of [N, C].
CommCost block_cost(std::int64_t n, std::int64_t c);
/// Vocab-parallel embedding forward: one all-reduce of [N, C] (backward: none).
CommCost embedding_forward_cost(std::int64_t n, std::int64_t c);
/// Vocab-parallel cross-entropy: three all-reduces of [N].
CommCost loss_cost(std::int64_t n);
/// LM head backward: one all-reduce of dh [N, C].
CommCost head_backward_cost(std::int64_t n, std::int64_t c);
/// A whole forward with the loss, N = B*T.
CommCost model_forward_cost(const ModelConfig& cfg);
/// A whole backward.
CommCost model_backward_cost(const ModelConfig& cfg);

/// Greedy generation of @p new_tokens after a prompt of @p prompt tokens (prefill, then one token
/// per step), batch B: all-reduces (embedding + 2 per layer, of [B, n, C] per step).
CommCost generation_all_reduce_cost(const ModelConfig& cfg, std::int64_t batch, std::int64_t prompt,
                                    std::int64_t new_tokens);
/// Its all-gathers: one per new token, 2 floats per row (vocab_parallel_argmax).
CommCost generation_all_gather_cost(std::int64_t batch, std::int64_t new_tokens);

/// Bytes each rank sends over its link in a ring all-reduce of @p bytes over @p tp ranks.
double ring_wire_bytes(double bytes, int tp);

/// Parameter elements one rank holds: (2V C + L (H hd C + 2 Hkv hd C + C H hd + 3 F C)) / tp
/// plus the replicated norms (2L + 1) C.
std::int64_t params_per_rank(const ModelConfig& cfg, int tp);

}  // namespace fivefold::ch03
