// SPDX-License-Identifier: MIT
/// @file megatron_sp.hpp
/// @brief Megatron sequence parallelism: tensor parallelism (chapter 03) whose replicated
/// regions (norms, residual adds, the embedding's output) are split along T over the tp group.
///
/// Chapter 03's f and g change: f, before a column-parallel block, becomes an all-gather along T
/// (backward: a reduce-scatter of the input gradient); g, after the row-parallel block, becomes a
/// reduce-scatter along T (backward: an all-gather of the output gradient). A reduce-scatter plus
/// an all-gather move what one all-reduce moves, so the bytes equal TP's; what is gained is that
/// every activation outside attention and MLP is held for T/tp positions instead of T.
///
/// What the backward keeps: each block keeps the GATHERED input [B, T, C] it saw in the forward
/// (inside the block's own activations) and does not gather it again. Megatron gathers it again
/// in the backward to save that memory, which costs one more all-gather per block (1.5 times
/// TP's backward bytes, 1.25 times its step's); we count what we do: per block forward 1
/// all-gather + 1 reduce-scatter, backward 1 all-gather + 1 reduce-scatter. The staging buffers
/// of these collectives are shared by every part (one SeqBuffers), not kept per block.
///
/// The norms see only this rank's positions, so their gain gradients are partial sums: they are
/// summed over tp after the backward (Param::sum_axes gets kSumTp). The embedding looks up all T
/// tokens in its vocabulary slice and reduce-scatters; the head gathers the final norm's output
/// and runs chapter 03's vocab-parallel loss over all T positions, its dh reduce-scattered.
#pragma once

#include <memory>

#include "chapters/05_sequence_parallel/seq_comm.hpp"
#include "common/model_config.hpp"
#include "nn/parts.hpp"

namespace fivefold::ch05 {

/// A block that works on all T positions, its output a partial sum over the tp group (attention
/// on this rank's heads through its o_proj columns; the SwiGLU on its F/tp slice), wrapped
/// between an all-gather and a reduce-scatter along T.
class SequenceRegion : public nn::Block {
 public:
  /// What one pass keeps.
  struct Saved : nn::Acts {
    std::unique_ptr<nn::Acts> inner;  ///< the wrapped block's (it keeps the gathered input)
    Tensor full_x;                    ///< input gathered along T [B, T, C]
    Tensor y;                         ///< output, this rank's positions [B, T/tp, C]
    Tensor full_dy;                   ///< output gradient gathered along T
    Tensor dx;                        ///< input gradient, this rank's positions
  };
  /// Wraps @p inner over the tp group @p tp.
  SequenceRegion(Ops& ops, Communicator& tp, RowMaps& maps, SeqBuffers& buf, std::unique_ptr<nn::Block> inner)
      : ops_(&ops), tp_(&tp), maps_(&maps), buf_(&buf), inner_(std::move(inner)) {}
  std::unique_ptr<nn::Acts> new_acts() const override;
  /// x [B, T/tp, C] -> all-gather -> block -> reduce-scatter -> y [B, T/tp, C].
  const Tensor& forward(nn::Acts& a, const Tensor& x, const nn::Pass& pass, nn::KvCache* cache) override;
  /// dy [B, T/tp, C] -> all-gather -> block's B -> reduce-scatter -> dx [B, T/tp, C].
  const Tensor& backward_input(nn::Acts& a, const Tensor& dy) override;
  /// The block's W (no communication).
  void backward_weight(nn::Acts& a) override { inner_->backward_weight(*static_cast<Saved&>(a).inner); }

 private:
  Ops* ops_;
  Communicator* tp_;
  RowMaps* maps_;
  SeqBuffers* buf_;
  std::unique_ptr<nn::Block> inner_;
};

/// The Megatron-SP parts over the tp group (this rank's chapter 03 shards).
class MegatronSpParts : public nn::PartFactory {
 public:
  /// Parts of @p cfg over @p tp.
  MegatronSpParts(Ops& ops, Communicator& tp, const ModelConfig& cfg) : ops_(&ops), tp_(&tp), cfg_(cfg), maps_(ops) {}
  std::unique_ptr<nn::EmbeddingPart> embedding(nn::ParamRegistry& params) override;
  std::unique_ptr<nn::Block> attention(nn::ParamRegistry& params, int l) override;
  std::unique_ptr<nn::Block> mlp(nn::ParamRegistry& params, int l) override;
  std::unique_ptr<nn::HeadPart> head(nn::ParamRegistry& params) override;

 private:
  Ops* ops_;
  Communicator* tp_;
  ModelConfig cfg_;
  RowMaps maps_;
  SeqBuffers buf_;  // shared by every part: one collective at a time
};

/// Marks the norm gains of @p params as summed over tp (they see only this rank's positions).
void mark_norms_partial(nn::ParamRegistry& params);

}  // namespace fivefold::ch05
