// SPDX-License-Identifier: MIT
/// @file seq_comm.hpp
/// @brief The collectives of a split sequence, over activations [B, T_l, ...] with the batch
/// outermost: Megatron-SP's all-gather and reduce-scatter along T, and Ulysses' all-to-alls
/// between "T/sp positions of every head" and "all T positions of a few heads".
///
/// Every collective moves rank blocks ([sp, B, T_l, ...]: block j goes to or comes from rank j)
/// while the model keeps [B, T, ...]; a row permutation (one Ops::gather_rows) sits beside each
/// call. Megatron keeps activations [T, B, C], sequence outermost, so that it needs none; we keep
/// the model's layout and pay one local copy instead.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "backends/communicator.hpp"
#include "backends/ops.hpp"

namespace fivefold::ch05 {

/// The index tensors of the permutations, made once per shape and kept (one per group).
class RowMaps {
 public:
  /// Over @p ops.
  explicit RowMaps(Ops& ops) : ops_(&ops) {}
  /// int32 [B*sp*Tl]: model row (b, i, t) of [B, sp*Tl] <- rank-block row (i, b, t) of [sp, B, Tl].
  const Tensor& model_from_blocks(std::int64_t B, int sp, std::int64_t Tl);
  /// int32 [sp*B*Tl]: the inverse, rank-block row (i, b, t) <- model row (b, i*Tl + t).
  const Tensor& blocks_from_model(std::int64_t B, int sp, std::int64_t Tl);
  /// int32 [sp*B*Tl]: rank-block row (j, b, t) <- row (b*Tl + t)*per + blocks[j] of a local
  /// [B, Tl, per*n, hd] viewed as rows of n*hd (head block blocks[j] of every local token).
  const Tensor& head_rows(std::int64_t B, std::int64_t Tl, std::int64_t per, const std::vector<int>& blocks);

 private:
  const Tensor& make(const std::string& key, std::vector<std::int32_t> idx);
  Ops* ops_;
  std::map<std::string, Tensor> maps_;
};

/// Buffers a collective of a split sequence stages through (kept between calls).
struct SeqBuffers {
  Tensor send;  ///< rank blocks to send
  Tensor recv;  ///< rank blocks received
};

/// Megatron-SP's all-gather along T: local [B, Tl, C] -> full [B, sp*Tl, C] (rank r's rows at
/// r*Tl). One all_gather (payload B*Tl*C floats).
void gather_seq(Communicator& g, Ops& ops, RowMaps& maps, const Tensor& local, Tensor& full, SeqBuffers& buf);
/// Megatron-SP's reduce-scatter along T: full [B, T, C], a partial sum on every rank -> local
/// [B, T/sp, C], the sum of the ranks' rows r*T/sp... One reduce_scatter (payload B*T*C floats).
void reduce_scatter_seq(Communicator& g, Ops& ops, RowMaps& maps, const Tensor& full, Tensor& local,
                        SeqBuffers& buf);

/// Ulysses, sequence -> heads: x [B, Tl, Hx, hd] (this rank's positions of every head) -> out
/// [B, sp*Tl, n, hd] (every rank's positions, rank by rank, of the n heads this rank gets).
/// Rank j gets heads blocks[j]*n .. blocks[j]*n + n - 1. One all_to_all (payload sp*B*Tl*n*hd).
void seq_to_heads(Communicator& g, Ops& ops, RowMaps& maps, const Tensor& x, Tensor& out, std::int64_t n,
                  const std::vector<int>& blocks, SeqBuffers& buf);
/// Ulysses, heads -> sequence, the reverse: y [B, sp*Tl, n, hd] -> x [B, Tl, Hx, hd], what rank
/// j sends back ADDED at heads blocks[j]*n..: zero x first. Where several ranks got the same
/// heads (kv heads replicated when sp > Hkv) their gradients are summed. One all_to_all.
void heads_to_seq(Communicator& g, Ops& ops, RowMaps& maps, const Tensor& y, Tensor& x, std::int64_t n,
                  const std::vector<int>& blocks, SeqBuffers& buf);

}  // namespace fivefold::ch05
