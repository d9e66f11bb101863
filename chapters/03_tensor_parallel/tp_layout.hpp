// SPDX-License-Identifier: MIT
/// @file tp_layout.hpp
/// @brief Which tensor-parallel degrees a model allows, how every parameter is split, and the
/// shards themselves (drawn with param_init_block, so a shard equals the slice of the serial
/// model's weight it stands for).
///
/// Megatron's split of a Llama layer over a TP group of tp ranks (rank r of the group):
/// | parameter                      | full      | split             | rank r holds            |
/// |--------------------------------|-----------|-------------------|-------------------------|
/// | embed_tokens, lm_head          | [V, C]    | rows (vocab)      | rows r*V/tp ..          |
/// | q_proj / k_proj, v_proj        | [H*hd, C] / [Hkv*hd, C] | rows (heads) | its H/tp / Hkv/tp heads |
/// | o_proj                         | [C, H*hd] | columns (heads)   | the columns of its heads|
/// | gate_proj, up_proj             | [F, C]    | rows              | rows r*F/tp ..          |
/// | down_proj                      | [C, F]    | columns           | columns r*F/tp ..       |
/// | the RMSNorm gains              | [C]       | replicated        | all of it               |
/// What it leaves out: uneven splits (Megatron pads the vocabulary; we reject instead) and
/// replicating kv heads when tp > Hkv.
#pragma once

#include <string>
#include <vector>

#include "backends/ops.hpp"
#include "common/model_config.hpp"
#include "nn/params.hpp"

namespace fivefold::ch03 {

/// How one parameter (or activation) is divided over the TP group.
enum class Split {
  replicated,  ///< every rank holds all of it
  rows,        ///< dimension 0 cut into tp equal blocks ("by output rows" for a weight)
  cols,        ///< the last dimension cut into tp equal blocks ("by input columns")
};

/// "replicated", "rows" or "cols".
const char* split_name(Split s);

/// The split of the parameter called @p name (the table in the file comment).
Split split_of(const std::string& name);

/// Shape of rank @p rank's block of a tensor of shape @p full split @p s over @p tp ranks.
Shape shard_shape(const Shape& full, Split s, int tp);
/// Where rank @p rank's block starts, one offset per dimension.
Shape shard_starts(const Shape& full, Split s, int rank, int tp);

/// The tensor-parallel degrees this model allows: the common divisors of H, Hkv, F and V
/// (every rank must own whole heads, whole kv heads, an equal slice of F and of the vocabulary).
std::vector<int> valid_tp_degrees(const ModelConfig& cfg);
/// "1, 2, 4".
std::string join_ints(const std::vector<int>& v);

/// Throws UsageError (one line naming the value, what it fails to divide, and the valid degrees)
/// unless tp divides H, Hkv, F, V and the world size. Same on every rank; no communication.
void validate_tp(const ModelConfig& cfg, int tp, int world_size);

/// This rank's shards of the model's parameters: a registry whose every entry is this rank's
/// block (value drawn by param_init_block at the block's offsets, so it equals that slice of the
/// serial weight; gradient zero; Param::full and Param::start say which block). Names as the
/// serial model's.
class TpParams : public nn::ParamRegistry {
 public:
  /// Shards of every parameter of @p cfg (dense model) for rank @p rank of @p tp.
  TpParams(Ops& ops, const ModelConfig& cfg, int rank, int tp);
};

}  // namespace fivefold::ch03
