// SPDX-License-Identifier: MIT
/// @file sp_layout.hpp
/// @brief Which positions of every sequence a rank of the sequence-parallel group holds, for the
/// four modes, and the layout rules each mode enforces.
///
/// Position t of a sequence lives on exactly one rank of the group of sp ranks:
/// - megatron, ulysses, ring: contiguous, rank r holds [r*T/sp, (r+1)*T/sp);
/// - zigzag: the sequence cut into 2*sp chunks of c = T/(2 sp); rank r holds chunk r and chunk
///   2 sp - 1 - r, so that every rank has one early and one late chunk (even causal work).
/// Tokens and targets are split with the same map (never shifted locally: the target of the last
/// local token is the next position's token, which another rank holds as an input), and RoPE and
/// the causal mask use these global positions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/model_config.hpp"
#include "nn/data.hpp"

namespace fivefold::ch05 {

/// The four ways chapter 05 splits the sequence.
enum class SpMode { megatron, ulysses, ring, zigzag };

/// "megatron", "ulysses", "ring", "zigzag".
std::string sp_mode_name(SpMode m);
/// The mode called @p name; UsageError naming the four otherwise.
SpMode parse_sp_mode(const std::string& name);
/// Every mode, in the chapter's order.
std::vector<SpMode> all_sp_modes();

/// A run of consecutive global positions [start, start + len).
struct Segment {
  std::int64_t start = 0;  ///< first position
  std::int64_t len = 0;    ///< how many
};

/// The positions rank @p r of @p sp holds of a sequence of @p T, as segments in local order.
std::vector<Segment> local_segments(SpMode mode, std::int64_t T, int sp, int r);
/// The same, one global position per local token (int32 host vector of T/sp entries).
std::vector<std::int32_t> local_positions(SpMode mode, std::int64_t T, int sp, int r);
/// Every rank's local_positions, concatenated in rank order (what a gather along the sequence
/// produces, e.g. Ulysses' all-to-all): a permutation of 0..T-1.
std::vector<std::int32_t> gathered_positions(SpMode mode, std::int64_t T, int sp);

/// This rank's columns of a batch: tokens and targets [B, T] -> [B, T/sp] at the positions of
/// @p positions (host tensors).
nn::Batch local_batch(const nn::Batch& full, const std::vector<std::int32_t>& positions);

/// Why @p mode cannot run @p cfg on @p sp ranks (one line naming the value and the fix), or ""
/// when it can: T divisible by sp (by 2 sp for zigzag); Ulysses: H % sp == 0 and
/// (Hkv % sp == 0 or sp % Hkv == 0); Megatron: sp is the tp group (H, Hkv, F and V divisible);
/// a dense model (MoE under sequence parallelism is chapter 07's).
std::string check_layout(SpMode mode, const ModelConfig& cfg, int sp);

/// Key/value heads that rank @p j of a Ulysses group of @p sp receives: max(1, Hkv/sp) heads
/// starting at j*Hkv/sp (when sp > Hkv each kv head is sent to sp/Hkv ranks).
struct KvHeads {
  int first = 0;  ///< first kv head
  int count = 0;  ///< how many
};
/// Ulysses' kv heads of rank @p j (see KvHeads).
KvHeads ulysses_kv_heads(int kv_heads, int sp, int j);

}  // namespace fivefold::ch05
