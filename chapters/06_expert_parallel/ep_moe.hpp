// SPDX-License-Identifier: MIT
/// @file ep_moe.hpp
/// @brief The MoE layer with its experts spread over the ep group: rank r holds experts
/// r*E/ep .. (r+1)*E/ep - 1 and its own tokens (whole sequences); the router is replicated.
///
/// Forward: route (chapter 01's routing, per sequence, on this rank's sequences); permute the
/// kept assignments (rows: up to k per token) by destination rank and expert; exchange them;
/// each rank runs its experts on what it received; the reverse exchange brings the outputs home,
/// where they are added to their tokens weighted by the gates (combine). Backward: the output
/// gradients travel the same way out and the input gradients back (two exchanges reusing the
/// forward's splits, no count exchange); the router's gradient stays home.
///
/// Two ways to exchange (a layer uses one):
/// - dropless (capacity factor 0): variable sizes. One all_to_all of the counts (E int32 per
///   rank: how many rows for each of the destination's experts), then all_to_allv of the rows.
/// - with capacity (cf > 0), as GShard: fixed-size buffers. Every (rank, expert) block has room
///   for b * capacity rows (b sequences here, capacity per sequence), padded with zero rows; one
///   all_to_all, no counts; the experts run on the padding too (zero in, zero out), which is the
///   price of static shapes: padding waste = 1 - real rows / buffer rows.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backends/communicator.hpp"
#include "common/model_config.hpp"
#include "nn/moe.hpp"
#include "nn/params.hpp"

namespace fivefold::ch06 {

/// What this rank's MoE layers exchanged and computed, summed over layers and passes.
struct EpStats {
  std::int64_t real_rows = 0;     ///< kept assignments of this rank's tokens (rows sent, padding excluded)
  std::int64_t buffer_rows = 0;   ///< rows of the send buffers (padding included)
  std::int64_t received_rows = 0; ///< rows received for this rank's experts (padding included)
  double expert_seconds = 0;      ///< time in the experts' compute, forward and backward
  double exchange_seconds = 0;    ///< time in the exchanges (waiting for the busiest rank included)
};

/// The MoE block of one layer with its experts over @p ep.
class EpMoeLayer : public nn::Block {
 public:
  /// What one pass keeps.
  struct Saved : nn::Acts {
    Tensor x;        ///< input [b, T, C] (a handle)
    Tensor logits;   ///< router logits [N, E]
    Tensor probs;    ///< router softmax [N, E]
    Tensor y;        ///< output
    Tensor dx;       ///< input gradient
    Tensor dlogits;  ///< router logits gradient (kept for W)
    nn::Routing routing;     ///< this rank's tokens' routing
    double aux_scale = 1.0;  ///< Pass::aux_scale of the forward
    bool padded = false;     ///< exchanged in fixed-size buffers
    Tensor tok;   ///< per send row: its token (0 for padding)
    Tensor real;  ///< per send row: 1, or 0 for padding
    Tensor gate;  ///< per send row: its gate (0 for padding)
    std::vector<std::int32_t> slot_of;         ///< per send row: the routing slot i*k + j (-1 padding)
    std::vector<std::int64_t> send;            ///< rows to each rank
    std::vector<std::int64_t> recv;            ///< rows from each rank
    std::vector<std::int64_t> recv_by_expert;  ///< [ep][E/ep] rows received per source and local expert
    Tensor perm;    ///< expert-major order: the received row of each
    Tensor unperm;  ///< received order: the expert-major row of each
    std::vector<std::int64_t> offsets;  ///< local expert e's rows [offsets[e], offsets[e+1])
    Tensor xs;  ///< rows sent
    Tensor ys;  ///< rows back home (the experts' outputs)
    Tensor xr;  ///< rows received, by source
    Tensor xe;  ///< rows received, by local expert
    Tensor ye;  ///< the experts' outputs, by local expert
    Tensor yr;  ///< ... by source, to send back
    std::vector<nn::SwiGluMlp::Saved> experts;  ///< each local expert's activations
    Tensor dys;         ///< backward: gate x dy per sent row
    Tensor dgate_rows;  ///< backward: d loss / d gate per sent row
    Tensor dyr;         ///< backward: output gradients received, by source
    Tensor dye;         ///< ... by local expert
    Tensor dxe;         ///< backward: the experts' input gradients, by local expert
    Tensor dxr;         ///< ... by source, to send back
    Tensor dxs;         ///< ... back home
    Tensor tmp;         ///< backward: dy per sent row (for the gate gradient)
  };
  /// Layer prefix @p prefix ("layers.l.moe") of @p cfg; @p params holds the router and this
  /// rank's experts (experts_of(rank)).
  EpMoeLayer(Ops& ops, Communicator& ep, nn::ParamRegistry& params, const std::string& prefix, const ModelConfig& cfg);
  std::unique_ptr<nn::Acts> new_acts() const override { return std::make_unique<Saved>(); }
  /// x [b, T, C] (this rank's sequences) -> y.
  const Tensor& forward(nn::Acts& a, const Tensor& x, const nn::Pass& pass, nn::KvCache* cache) override;
  /// B: dy -> dx (the router's aux-loss gradient included).
  const Tensor& backward_input(nn::Acts& a, const Tensor& dy) override;
  /// W: the router's and this rank's experts' gradients accumulate.
  void backward_weight(nn::Acts& a) override;
  double aux_loss(const nn::Acts& a) const override { return static_cast<const Saved&>(a).routing.aux_loss; }
  /// This layer's counters.
  const EpStats& stats() const { return stats_; }
  /// Forgets them.
  void reset_stats() { stats_ = {}; }
  /// The routing of the last forward.
  const nn::Routing& routing() const { return last_->routing; }
  /// With capacity (cf > 0): exchange in fixed padded buffers (true, the default, as GShard) or
  /// only the kept rows, with a count exchange (false): the same result, other shapes and bytes.
  void set_fixed_buffers(bool on) { fixed_buffers_ = on; }
  /// What a rank whose sequences are split over a group (chapter 07) learns from the group: from
  /// its picked routing (nn::pick_experts) the SequenceShare of its tokens. Collective over that
  /// group, called once per forward.
  using ShareFn = std::function<nn::SequenceShare(const nn::Routing& picked)>;
  /// Routes split sequences with @p f (capacity and aux loss over the whole sequence); unset
  /// (the default), every rank holds whole sequences.
  void set_sequence_share(ShareFn f) { share_ = std::move(f); }

 private:
  void exchange(Saved& s, const Tensor& in, Tensor& out, bool back);
  Ops* ops_;
  Communicator* ep_;
  Tensor w_router_, dw_router_;
  std::vector<nn::SwiGluMlp> experts_;
  int E_, El_, first_, topk_;
  double cf_, aux_coef_;
  bool fixed_buffers_ = true;
  ShareFn share_;
  EpStats stats_;
  const Saved* last_ = nullptr;
};

/// The experts rank @p r of @p ep holds: [first, first + E/ep).
std::pair<int, int> experts_of(int experts, int ep, int r);

/// The dispatch permutation of one pass: what each row of the send buffer holds.
struct DispatchPlan {
  std::vector<std::int32_t> token;     ///< per row: the token it carries (0 for padding)
  std::vector<std::int32_t> slot;      ///< per row: its routing slot i*k + j (-1 for padding)
  std::vector<float> real;             ///< per row: 1, or 0 for padding
  std::vector<float> gate;             ///< per row: the assignment's gate (0 for padding)
  std::vector<std::int64_t> rows_to;   ///< rows for each rank of the ep group
  std::vector<std::int64_t> per_expert;  ///< kept rows for each expert (all E)
};
/// The send buffer of routing @p r over @p ep ranks: rows grouped by destination rank, then by
/// expert, then in increasing token order (experts are contiguous per rank, so by expert is by
/// rank). @p slots 0: the kept rows back to back (dropless); > 0: a block of @p slots rows per
/// expert, the kept rows first, padding after.
DispatchPlan dispatch_plan(const nn::Routing& r, int ep, std::int64_t slots);
/// The count exchange: every rank sends each rank of @p ep the rows it has for each of that
/// rank's experts (@p per_expert, all E); returns, for this rank, [source][local expert]: how
/// many rows arrive from each rank for each of its experts. One all_to_all of E int32.
std::vector<std::int64_t> exchange_counts(Communicator& ep, Ops& ops, const std::vector<std::int64_t>& per_expert);

}  // namespace fivefold::ch06
