// SPDX-License-Identifier: MIT
/// @file tp_gather.hpp
/// @brief Between shards and full tensors, for cross-checks and --dump only (never in the
/// model's own forward/backward): a rank's block of a full tensor, and the full tensor gathered
/// from every rank's shard with an UNCOUNTED all-gather (bookkeeping, not the algorithm).
#pragma once

#include "backends/communicator.hpp"
#include "backends/ops.hpp"
#include "chapters/03_tensor_parallel/tp_layout.hpp"

namespace fivefold::ch03 {

/// Rank @p rank's block of @p full (any device) split @p s over @p tp ranks, as a host tensor of
/// shape shard_shape(full.shape(), s, tp). Split::cols cuts the last dimension of a tensor
/// viewed as rows of it (so a [B, T, F] activation splits F).
Tensor block_of(const Tensor& full, Split s, int rank, int tp);

/// The full tensor (host) of which every rank of @p tp holds the block @p shard split @p s.
/// Collective over @p tp; the all-gather is not counted.
Tensor gather_full(Communicator& tp, Ops& ops, const Tensor& shard, Split s);

/// Runs @p fn with counting switched off on @p comm (restores the previous state).
template <typename Fn>
void uncounted(Communicator& comm, Fn&& fn) {
  const bool was = comm.counting();
  comm.set_counting(false);
  try {
    fn();
  } catch (...) {
    comm.set_counting(was);
    throw;
  }
  comm.set_counting(was);
}

}  // namespace fivefold::ch03
