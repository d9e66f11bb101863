// SPDX-License-Identifier: MIT
/// @file ulysses.hpp
/// @brief DeepSpeed-Ulysses attention: every rank projects q, k, v for its T/sp positions of
/// every head; all-to-alls turn them into all T positions of H/sp heads; each rank runs the
/// ordinary causal attention on its heads over the whole sequence; one all-to-all brings the
/// output back to "my positions, every head" for o_proj.
///
/// Communication per layer, forward: 4 all-to-alls (q, k, v, and the output), payload per rank
///   b (T/sp) hd (2H + 2 max(Hkv, sp)) * 4 bytes;
/// backward: 4 more of the same sizes (the output gradient in, dq, dk, dv out). Constraint:
/// H % sp == 0, and Hkv % sp == 0 or sp % Hkv == 0. When sp > Hkv each kv head goes to the
/// sp/Hkv ranks whose query heads read it, and their dK/dV are summed on the way back.
#pragma once

#include <vector>

#include "chapters/05_sequence_parallel/seq_comm.hpp"
#include "common/model_config.hpp"
#include "nn/attention.hpp"

namespace fivefold::ch05 {

/// Attention with the sequence split over @p sp and the heads exchanged around the core.
class UlyssesAttention : public nn::Attention {
 public:
  /// What one pass keeps besides the projections': the head-split tensors of the core.
  struct Saved : nn::Attention::Saved {
    Tensor qh;    ///< queries, all T positions of this rank's H/sp heads
    Tensor kh;    ///< keys, all T positions of its max(1, Hkv/sp) kv heads
    Tensor vh;    ///< values, likewise
    Tensor oh;    ///< attention output of its heads
    Tensor lseh;  ///< its log-sum-exp
    Tensor d_oh;  ///< output gradient of its heads
    Tensor dqh;   ///< gradients of qh, kh, vh
    Tensor dkh;   ///< ...
    Tensor dvh;   ///< ...
  };
  /// Over the full weights @p w (replicated); @p all_pos int32 [T]: the global position of every
  /// token in rank order (gathered_positions), what the all-to-all delivers. @p maps and @p buf
  /// are shared by every layer (one collective at a time).
  UlyssesAttention(Ops& ops, Communicator& sp, const ModelConfig& cfg, nn::AttentionWeights w, Tensor all_pos,
                   RowMaps& maps, SeqBuffers& buf);
  std::unique_ptr<nn::Acts> new_acts() const override { return std::make_unique<Saved>(); }
  /// Payload bytes this rank sends per layer in the forward (= the backward's) for @p b
  /// sequences of @p T: b (T/sp) hd (2H + 2 max(Hkv, sp)) * 4.
  static std::int64_t bytes_per_layer(const ModelConfig& cfg, int sp, std::int64_t b, std::int64_t T);

 protected:
  void attend(nn::Attention::Saved& s) override;
  void attend_backward(nn::Attention::Saved& s) override;

 private:
  Communicator* sp_;
  RowMaps* maps_;
  SeqBuffers* buf_;
  Tensor all_pos_;
  int h_local_, kv_local_;
  std::vector<int> q_blocks_, kv_blocks_;
};

}  // namespace fivefold::ch05
