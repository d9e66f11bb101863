// SPDX-License-Identifier: MIT
/// @file hybrid.hpp
/// @brief The five axes at once: one rank of a tp x sp x ep x dp x pp grid runs the one decoder
/// (nn/decoder.hpp) over the layers of its pipeline stage, with the parts of the other chapters
/// plugged in, stepped by chapter 04's pipeline runner. No trainer of its own:
///
/// | axis | what a rank holds / does | from |
/// |------|--------------------------|------|
/// | pp | the layers of stage p (rank_chunks), 1F1B over m microbatches | chapter 04 |
/// | tp | shard t of every dense weight; all-reduces (or Megatron-SP's all-gather/reduce-scatter along T) | chapters 03, 05 |
/// | sp | positions of its ring/zigzag segments; k/v blocks around the ring | chapter 05 |
/// | ep | experts E/ep of every MoE layer, whole (not split by tp); dispatch/combine all-to-alls | chapter 06 |
/// | dp | the rows of the global batch of data rank (ep, dp) | chapter 02 |
///
/// Gradients (Param::sum_axes, summed by nn::SummedUpdate): a dense weight saw this rank's rows
/// and positions only: summed over sp, ep and dp; an expert lives on the sp x dp ranks with the
/// same ep coordinate (its expert-data-parallel group): summed over sp and dp. Under Megatron-SP
/// the norm gains and the experts also saw only this rank's positions of the tp group: + tp.
/// With dp > 1, sp = ep = 1 and no Megatron-SP the dp sum can be chapter 02's bucketed
/// all-reduce overlapped with the backward, or ZeRO-1 (ShardDdp).
///
/// MoE under a split sequence: capacity is per sequence, first come first served in position
/// order, so a rank must know how many assignments the earlier positions of each sequence made:
/// one all-gather of per-segment counts over the sequence group per layer and microbatch, then
/// an exclusive prefix sum in global position order (nn::apply_capacity).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/grid_comms.hpp"
#include "chapters/03_tensor_parallel/tp_model.hpp"
#include "chapters/04_pipeline_parallel/pp_link.hpp"
#include "chapters/04_pipeline_parallel/pp_runner.hpp"
#include "chapters/05_sequence_parallel/megatron_sp.hpp"
#include "chapters/05_sequence_parallel/ring_attention.hpp"
#include "chapters/06_expert_parallel/ep_moe.hpp"
#include "chapters/07_hybrid_parallel/dp_tp.hpp"
#include "common/summary.hpp"
#include "nn/decoder.hpp"
#include "nn/train_step.hpp"

namespace fivefold::ch07 {

/// What runs on the grid besides its degrees.
struct HybridConfig {
  ModelConfig model;          ///< the model (and the global batch B, T, steps)
  bool megatron_sp = false;   ///< sequence parallelism inside the tp group (Megatron-SP); sp axis 1
  ch05::SpMode sp_mode = ch05::SpMode::ring;  ///< ring or zigzag on the sp axis
  int microbatches = 1;       ///< m per step (1F1B over pp)
  bool bucketed = true;       ///< with dp > 1, sp = ep = 1 and no Megatron-SP: chapter 02's bucketed DDP (else one packed all-reduce)
  DpTpConfig dp;              ///< buckets, overlap, ZeRO-1 (bucketed only)
};

/// The groups of one axis each, whose traffic a run counts, in canonical order.
inline constexpr const char* kHybridGroups[] = {"tp", "sp", "ep", "dp", "pp"};

/// The sets of axes whose communicators a hybrid rank needs: tp, sp, ep, dp, pp and ep-dp.
std::vector<AxisSet> hybrid_sets();

/// Why @p grid cannot train @p hc, as one clause naming the value and the fix, or "".
std::string hybrid_blocker(const ProcessGrid& grid, const HybridConfig& hc);

class HybridParts;

/// What one rank of the grid holds, built before its decoder: its stage's layers, tp shards of
/// the dense weights, E/ep whole experts (Param::sum_axes as in the table above), and the parts.
struct HybridStorage {
  /// Rank @p rank's parameters and parts of @p hc over @p comms (hybrid_sets()).
  HybridStorage(Ops& ops, const GridComms& comms, int rank, const HybridConfig& hc);
  ~HybridStorage();
  nn::ParamRegistry params_;                 ///< this rank's parameters
  std::vector<std::pair<int, int>> stage_chunks_;  ///< its layers [first, last)
  std::unique_ptr<HybridParts> parts_;       ///< the parts of every axis
};

/// One rank's model and step.
class HybridModel : private HybridStorage, public nn::Decoder {
 public:
  /// Rank world.rank() of the grid of @p comms (which holds hybrid_sets()) under @p hc (throws
  /// the hybrid_blocker's clause for a bad layout).
  HybridModel(Ops& ops, Communicator& world, const GridComms& comms, const HybridConfig& hc);
  /// This rank's parameters.
  nn::ParamRegistry& params() { return params_; }
  /// The synchroniser of the layout: ShardDdp over dp (bucketed, or ZeRO-1) when the config asks
  /// for it and the layout allows it, else nn::SummedUpdate over the groups of Param::sum_axes.
  std::unique_ptr<nn::Synchroniser> make_sync(const nn::AdamWConfig& adam);
  /// True when make_sync gives ShardDdp (dp > 1, sp = ep = 1, no Megatron-SP, and asked for).
  bool bucketed() const;
  /// One training step on the global batch @p global: this rank's rows and positions, the 1F1B
  /// passes, the synchroniser. Returns the global mean loss (aux included), the same on every rank.
  double step(nn::Synchroniser& sync, const nn::Batch& global, ch04::StepRecord* record = nullptr);
  /// The pipeline link (its per-route counts).
  ch04::StageLink& link() { return *link_; }
  /// This rank's data index (its rows are data_rank()*rows() ..) and rows per step.
  int data_rank() const { return data_rank_; }
  /// Rows of the global batch this rank trains on per step.
  std::int64_t rows() const { return rows_; }
  /// Positions of each sequence this rank's layers see between stages (T/sp, T/tp under Megatron-SP, else T).
  std::int64_t act_len() const { return act_len_; }
  /// The grid.
  const ProcessGrid& grid() const { return comms_->grid(); }
  /// The MoE layers of this stage.
  const std::vector<ch06::EpMoeLayer*>& moe_layers() const;

 private:
  Communicator* world_;
  const GridComms* comms_;
  HybridConfig hc_;
  int rank_, data_rank_;
  std::int64_t rows_, act_len_, T_ce_;
  std::unique_ptr<ch04::StageLink> link_;
  std::unique_ptr<ch04::PipelineRunner> runner_;
  std::vector<std::int32_t> positions_;  // ring/zigzag: this rank's positions
};

/// Every parameter of @p params (values, or with @p grads gradients) against the same block of
/// the whole tensor of that name in @p ref (by Param::start and shape), merged into one check.
CheckResult compare_blocks(const std::string& name, nn::ParamRegistry& params, const std::map<std::string, Tensor>& ref,
                           bool grads, double tol);

}  // namespace fivefold::ch07
