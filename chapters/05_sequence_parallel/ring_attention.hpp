// SPDX-License-Identifier: MIT
/// @file ring_attention.hpp
/// @brief Ring attention (and its zigzag layout): every rank keeps the queries of its positions
/// while the key/value blocks travel around the ring, one hop per step, the next block's
/// transfer posted before the current block is computed; the partial results are merged with
/// the online softmax (running log-sum-exp). Backward: the key/value blocks travel the ring
/// again, each with its dK/dV accumulator, which every rank adds its share to and which arrives
/// home after sp hops; dQ stays where the queries are.
///
/// Work: a (query segment, key segment) pair wholly above the causal diagonal (every key after
/// every query) is skipped. With contiguous positions rank r computes r + 1 of the sp blocks
/// (the last rank sp times the first's); zigzag gives every rank one early and one late chunk,
/// so every rank computes 2 sp + 1 of the (2 sp)^2 quarter-size pairs: the same work.
///
/// Communication per layer (sp > 1), payload per rank with S = b (T/sp) Hkv hd * 4 bytes:
/// forward (sp - 1) hops of k and v = 2 (sp - 1) S; backward (sp - 1) hops of k and v plus sp
/// hops of dk and dv = 2 (2 sp - 1) S. Counted as isend (and the same as irecv).
#pragma once

#include <vector>

#include "backends/communicator.hpp"
#include "chapters/05_sequence_parallel/sp_layout.hpp"
#include "common/model_config.hpp"
#include "nn/attention.hpp"

namespace fivefold::ch05 {

/// The attention work of one rank, summed over layers and passes.
struct RingWork {
  std::int64_t pairs = 0;    ///< (query segment, key segment) pairs computed (forward)
  std::int64_t skipped = 0;  ///< pairs skipped, wholly above the causal diagonal
  std::int64_t scores = 0;   ///< query x key entries of the pairs computed, per sequence and head
  double seconds = 0;        ///< time in the attention core's compute, forward and backward
};

/// Attention with the sequence split over @p sp, the key/value blocks passed around a ring.
class RingAttention : public nn::Attention {
 public:
  /// What one pass keeps besides the projections': per local segment its queries, output, lse.
  struct Saved : nn::Attention::Saved {
    std::vector<Tensor> qs;    ///< queries of each local segment
    std::vector<Tensor> os;    ///< their attention output over every key
    std::vector<Tensor> lses;  ///< ... and its log-sum-exp
  };
  /// Over the weights @p w (replicated over sp), positions of @p mode (ring or zigzag) for
  /// sequences of @p T. With @p tp > 1, @p w are this rank's head shards of a tensor-parallel
  /// group (H/tp query and Hkv/tp kv heads; chapter 07 wraps it in ch03::TpAttention).
  RingAttention(Ops& ops, Communicator& sp, const ModelConfig& cfg, nn::AttentionWeights w, SpMode mode,
                std::int64_t T, int tp = 1);
  std::unique_ptr<nn::Acts> new_acts() const override { return std::make_unique<Saved>(); }
  /// This rank's attention work so far.
  const RingWork& work() const { return work_; }
  /// Forgets it.
  void reset_work() { work_ = {}; }
  /// Payload bytes per layer this rank sends (isend) in the forward (see above).
  /// (@p tp: the kv heads are split over a TP group too.)
  static std::int64_t forward_bytes(const ModelConfig& cfg, int sp, std::int64_t b, std::int64_t T, int tp = 1);
  /// ... and in the backward.
  static std::int64_t backward_bytes(const ModelConfig& cfg, int sp, std::int64_t b, std::int64_t T, int tp = 1);
  /// Pairs of (query segment, key segment) rank @p r computes per layer and pass, and the
  /// query x key entries they hold: what work() must count.
  static std::pair<std::int64_t, std::int64_t> expected_work(SpMode mode, std::int64_t T, int sp, int r);

 protected:
  void attend(nn::Attention::Saved& s) override;
  void attend_backward(nn::Attention::Saved& s) override;

 private:
  bool skip(int a, int src, int b) const;
  Tensor segment(const Tensor& x, int rank, int b) const;
  Communicator* sp_;
  std::vector<std::vector<Segment>> segs_;  // every rank's segments
  std::vector<std::vector<Tensor>> seg_pos_;  // ... their positions (int32 on the device)
  std::vector<std::int64_t> offsets_;  // where each of a rank's segments starts locally
  RingWork work_;
};

}  // namespace fivefold::ch05
