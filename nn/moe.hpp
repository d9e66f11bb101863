// SPDX-License-Identifier: MIT
/// @file moe.hpp
/// @brief The MoE layer of the reference model (docs/reference.md): router softmax, top-k (ties ->
/// lower expert index),
/// renormalised gates, per-sequence capacity, SwiGLU experts, and the Switch aux loss.
///
/// Routing (top-k, capacity, aux loss and the router's backward) runs on the host from the
/// downloaded router probabilities: they are only N*E numbers. The expert compute (gather,
/// SwiGLU, weighted scatter-add) runs on the device through Ops.
///
/// Aux loss: per sequence s of T tokens (N = T, the same grouping as the capacity),
/// aux_s = aux_coef * E * sum_e f_e * P_e with f_e = (assignments of s to e, before the
/// capacity drop) / (T*k) and P_e = mean over the T tokens of p_e; the layer's aux loss is
/// the mean of aux_s over the B sequences (like the cross-entropy, a mean over the batch).
/// Its gradient flows through P_e only (f_e counts are constants).
#pragma once

#include <cstdint>
#include <vector>

#include "backends/ops.hpp"
#include "nn/layers.hpp"
#include "nn/params.hpp"

namespace fivefold::nn {

/// The routing decisions of one MoE forward (host memory). Assignment j of token i (j < k) is
/// slot i*k + j.
struct Routing {
  std::int64_t tokens = 0;     ///< N = B*T
  int experts = 0;             ///< E
  int topk = 0;                ///< k
  std::vector<float> probs;    ///< [N, E] router softmax
  std::vector<std::int32_t> choice;  ///< [N, k] picked experts, by decreasing probability
  std::vector<float> gate;     ///< [N, k] picked probabilities renormalised to sum 1
  std::vector<std::uint8_t> kept;    ///< [N, k] 1 when within the expert's capacity
  /// Per expert: the tokens it processes (kept assignments), in increasing token index.
  std::vector<std::vector<std::int32_t>> expert_tokens;
  /// Per expert: the slot i*k + j of each of its tokens (where its gate lives).
  std::vector<std::vector<std::int32_t>> expert_slots;
  double aux_loss = 0.0;       ///< aux_coef * mean over sequences of E * sum_e f_e P_e
  std::vector<double> aux_dprobs;  ///< [N, E] d aux_loss / d probs
  std::int64_t dropped = 0;    ///< assignments over capacity
};

/// Per-sequence capacity ceil(cf * k * T / E) (no limit, returned as T*k, when cf is 0).
std::int64_t expert_capacity(double capacity_factor, int topk, std::int64_t seq_len, int experts);

/// Routes N = B * @p seq_len tokens from their router probabilities @p probs [N, E]
/// (pick_experts, then apply_capacity over whole sequences).
Routing route_tokens(const std::vector<float>& probs, std::int64_t seq_len, int experts, int topk,
                     double capacity_factor, double aux_coef);

/// Where this rank's tokens sit in their sequences, and what the whole of each sequence chose:
/// what capacity and the aux loss need when a sequence is split over ranks (chapter 07). A rank
/// holds b sequences of T_l local tokens, each as G segments in local order (lengths
/// @c segments, the same for every sequence).
struct SequenceShare {
  std::int64_t seq_len = 0;              ///< T: the whole sequence's length (the capacity's)
  std::vector<std::int64_t> segments;    ///< G segment lengths, local order; they sum to T_l
  std::vector<std::int64_t> before;      ///< [b][G][E] assignments to each expert at earlier positions of the sequence
  std::vector<std::int64_t> chosen;      ///< [b][E] assignments of the whole sequence to each expert
  std::vector<double> prob_sum;          ///< [b][E] sum of p_e over the whole sequence's T tokens
  double aux_share = 1.0;                ///< this rank's share of the aux-loss VALUE (its gradient is whole)
};

/// Per segment of this rank's tokens: assignments to each expert and sum of p_e, [b][G][E].
struct SegmentCounts {
  std::vector<std::int64_t> chosen;  ///< [b][G][E]
  std::vector<double> prob_sum;      ///< [b][G][E]
};

/// The top-k experts and renormalised gates of every token (no capacity yet: kept is empty).
Routing pick_experts(const std::vector<float>& probs, int experts, int topk);

/// The counts of @p r's tokens, read as sequences cut into @p segments (local order).
SegmentCounts segment_counts(const Routing& r, const std::vector<std::int64_t>& segments);

/// Capacity and aux loss of a picked routing: per sequence, positions in increasing order, each
/// expert keeps assignments while fewer than ceil(cf k T / E) were kept before (the earlier
/// segments, on other ranks, count through @p share.before); the aux loss from the whole
/// sequence's counts and probabilities, its value times share.aux_share.
void apply_capacity(Routing& r, double capacity_factor, double aux_coef, const SequenceShare& share);

/// Backward of the routing: from d loss / d gate [N, k] (zero for dropped slots) and the aux
/// gradient, d loss / d router logits [N, E] (renormalisation then softmax backward).
std::vector<float> router_logits_grad(const Routing& r, const std::vector<float>& dgate);

/// The MoE MLP: y = sum over kept picked experts e of gate_e * expert_e(x).
class MoeLayer : public Block {
 public:
  /// What one pass keeps: the routing, the dispatched rows and every expert's activations.
  struct Saved : Acts {
    Tensor x;  ///< input (a handle)
    Tensor logits;  ///< router logits [N, E]
    Tensor probs;  ///< router softmax [N, E]
    Tensor y;  ///< output
    Tensor dx;  ///< input gradient
    Tensor dlogits;  ///< router logits gradient (kept for W)
    Routing routing;                          ///< the decisions of this pass
    double aux_scale = 1.0;                   ///< Pass::aux_scale of the forward
    /// Every expert's assignments concatenated: expert e owns rows [offsets[e], offsets[e+1]).
    std::vector<std::int64_t> offsets;
    Tensor idx;  ///< token of each dispatched row
    Tensor gates;  ///< gate of each dispatched row
    Tensor xe;  ///< dispatched rows [n, C]
    Tensor ye;  ///< expert outputs [n, C]
    Tensor dye;  ///< gradient of the expert outputs
    Tensor dxe;  ///< gradient of the dispatched rows
    Tensor dgate;  ///< gradient of each gate
    std::vector<SwiGluMlp::Saved> experts;    ///< each expert's activations
  };
  /// @p router is "<prefix>.router.weight" [E, C]; @p experts holds the E experts' weights.
  MoeLayer(Ops& ops, Param& router, std::vector<SwiGluWeights> experts, int topk, double capacity_factor,
           double aux_coef);
  /// MoeLayer over the registry entries under @p prefix (e.g. "layers.1.moe").
  MoeLayer(Ops& ops, ParamRegistry& reg, const std::string& prefix, int experts, int topk,
           double capacity_factor, double aux_coef);
  std::unique_ptr<Acts> new_acts() const override { return std::make_unique<Saved>(); }
  /// x [B, T, C] -> y [B, T, C]; routing per sequence of T tokens.
  const Tensor& forward(Acts& a, const Tensor& x, const Pass& pass, KvCache* cache) override;
  /// B: dy [B, T, C] -> dx, including the aux loss gradient (times the pass's aux_scale).
  const Tensor& backward_input(Acts& a, const Tensor& dy) override;
  /// W: router and expert gradients accumulate.
  void backward_weight(Acts& a) override;
  double aux_loss(const Acts& a) const override { return static_cast<const Saved&>(a).routing.aux_loss; }
  /// One pass in flight, over the layer's own Saved: x -> y.
  const Tensor& forward(const Tensor& x) { return forward(own_, x, Pass{}, nullptr); }
  /// B and W of forward(x).
  const Tensor& backward(const Tensor& dy);
  /// The aux loss of the last forward (add it to the step's loss).
  double aux_loss() const { return last_ ? last_->routing.aux_loss : 0.0; }
  /// The routing of the last forward (on whichever Saved it ran; valid while that Saved lives).
  const Routing& routing() const { return last_ ? last_->routing : own_.routing; }
  /// Overrides the capacity factor (a pass with Pass::dropless routes dropless whatever it is).
  void set_capacity_factor(double cf) { capacity_factor_ = cf; }

 private:
  Ops* ops_;
  Tensor w_router_, dw_router_;
  std::vector<SwiGluMlp> experts_;
  int topk_;
  double capacity_factor_, aux_coef_;
  Saved own_;
  const Saved* last_ = nullptr;
};

}  // namespace fivefold::nn
