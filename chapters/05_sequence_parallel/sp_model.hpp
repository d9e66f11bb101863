// SPDX-License-Identifier: MIT
/// @file sp_model.hpp
/// @brief The model with its sequence split over a group: the one decoder (nn/decoder.hpp) with
/// the parts of a mode, and the training step of a split sequence.
///
/// - megatron: chapter 03's shards over the group (it is the tp group), the Megatron-SP parts;
///   every rank reads the whole batch (the embedding looks up all T tokens of its vocab slice).
/// - ulysses, ring, zigzag: every weight replicated; only the attention's core is a part of
///   its own (the norms, the MLP, the embedding and the head work position by position, so
///   they need no change). Each rank reads its positions of the batch (the index map).
/// The step: the loss's gradient is scaled by 1/(global B*T) on every rank, every gradient is
/// then summed over the group (under Megatron-SP only the norm gains, the rest are shards), and
/// the loss's value is the sum over the group of each rank's share.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "chapters/05_sequence_parallel/ring_attention.hpp"
#include "chapters/05_sequence_parallel/seq_comm.hpp"
#include "chapters/05_sequence_parallel/sp_layout.hpp"
#include "nn/decoder.hpp"
#include "nn/train_step.hpp"

namespace fivefold::ch05 {

/// What one training step of @p mode hands to each collective on one rank of @p sp (calls,
/// payload bytes by the counting rules of communicator.hpp), from the formulas:
/// - megatron: all_gather and reduce_scatter 4L + 2 calls each (2 per block and pass, the
///   embedding's and the head's), B (T/sp) C and B T C floats each; all_reduce: chapter 03's
///   3 of B T floats in the vocab-parallel loss, and 1 of the norm gains (2L + 1) C;
/// - ulysses: all_to_all 8L calls, 2L * UlyssesAttention::bytes_per_layer; all_reduce 1 of every
///   parameter;
/// - ring, zigzag: isend (and irecv) per layer 2 (sp - 1) forward and 4 sp - 2 backward calls,
///   RingAttention::forward_bytes + backward_bytes; all_reduce 1 of every parameter.
/// A group of one rank reduces no gradient and sends nothing around a ring.
std::map<std::string, OpCount> step_comm(SpMode mode, const ModelConfig& cfg, int sp);

/// The parts of ulysses, ring and zigzag: the serial parts with the attention of the mode.
class SpParts : public nn::SerialParts {
 public:
  /// Parts of @p cfg over the group @p sp for sequences of @p T.
  SpParts(Ops& ops, Communicator& sp, const ModelConfig& cfg, SpMode mode, std::int64_t T);
  std::unique_ptr<nn::Block> attention(nn::ParamRegistry& params, int l) override;
  /// The ring attentions made so far (ring, zigzag), one per layer.
  const std::vector<RingAttention*>& rings() const { return rings_; }

 private:
  Ops* ops_;
  Communicator* sp_;
  ModelConfig cfg_;
  SpMode mode_;
  std::int64_t T_;
  std::vector<RingAttention*> rings_;
  RowMaps maps_;    // Ulysses' permutations, shared by every layer
  SeqBuffers buf_;  // ... and its staging buffers
};

/// The parameters and parts of a mode, built before the decoder (a base class, constructed first).
struct SpStorage {
  /// This rank's parameters (shards under megatron) and the mode's parts.
  SpStorage(Ops& ops, Communicator& sp, const ModelConfig& cfg, SpMode mode);
  std::unique_ptr<nn::ParamRegistry> params_;  ///< full, or chapter 03's shards
  std::unique_ptr<nn::PartFactory> parts_;     ///< the mode's parts
};

/// One rank's model under a sequence-parallel mode.
class SpModel : private SpStorage, public nn::Decoder {
 public:
  /// The model @p cfg (dense; check_layout first) on this rank of @p sp under @p mode.
  SpModel(Ops& ops, Communicator& sp, const ModelConfig& cfg, SpMode mode);
  /// This rank's parameters.
  nn::ParamRegistry& params() { return *params_; }
  /// The mode.
  SpMode mode() const { return mode_; }
  /// The group the sequence is split over.
  Communicator& group() { return *sp_; }
  /// The synchroniser of a plain run: AdamW after the gradient sums of the mode.
  std::unique_ptr<nn::SummedUpdate> make_update(const nn::AdamWConfig& cfg);
  /// What this rank reads of @p global (its positions of every sequence; the whole of it under
  /// megatron).
  nn::Batch mine(const nn::Batch& global) const;
  /// One training step on the global batch @p global: forward and backward of this rank's part,
  /// @p sync's gradient sums and update. Returns the global mean loss (the same on every rank).
  /// @p before_update (optional) runs between the gradient sums and the update (a dump's grads).
  double step(nn::Synchroniser& sync, const nn::Batch& global, const std::function<void()>& before_update = {});
  /// Forward only (for the activation measurement): the global mean loss, no backward.
  double forward_only(const nn::Batch& global);
  /// The attention work of every ring layer of this rank, summed (zero unless ring or zigzag).
  RingWork ring_work() const;
  /// Forgets it.
  void reset_ring_work();

 private:
  double local_forward(const nn::Batch& global);
  Communicator* sp_;
  SpMode mode_;
  std::int64_t T_;
  std::vector<std::int32_t> positions_;
};

}  // namespace fivefold::ch05
