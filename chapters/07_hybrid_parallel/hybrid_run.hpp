// SPDX-License-Identifier: MIT
/// @file hybrid_run.hpp
/// @brief One narrated hybrid training run of the chapter program (steps 4-7 use it): the grid,
/// what each rank holds, the run against the serial model, and what each group moved.
#pragma once

#include <map>
#include <string>

#include "chapters/07_hybrid_parallel/hybrid.hpp"
#include "chapters/07_hybrid_parallel/layout.hpp"
#include "chapters/harness.hpp"

namespace fivefold::ch07 {

/// What a run counted on this rank.
struct HybridRun {
  std::map<std::string, CommCounts> groups;  ///< per group ("tp", "sp", "ep", "dp", "pp"): counted ops over the run
  std::int64_t param_bytes = 0;              ///< this rank's parameters
  std::int64_t peak_activation_bytes = 0;    ///< most activation bytes the last step held at once
  std::int64_t stage_numel = 0;              ///< this rank's parameter elements (= param_bytes / 4)
  int steps = 0;                             ///< optimizer steps run
  bool bucketed = false;                     ///< DP by ShardDdp (else nn::SummedUpdate)
  std::int64_t dp_buckets = 0;               ///< ShardDdp's buckets
  std::int64_t dp_padded = 0;                ///< ShardDdp's flat buffer (elements, padded to dp)
  std::int64_t summed_bytes[5] = {0, 0, 0, 0, 0};  ///< SummedUpdate::bytes per axis bit index (tp, sp, ep, dp)
  std::int64_t assignments = 0;              ///< MoE: this rank's tokens x top-k x MoE layers, over the run's forwards
  std::int64_t kept = 0;                     ///< MoE: ... of them within capacity (the rest dropped)
};

/// The grid step @p step (4, 5, 6) trains: the options' when they name a degree, else default_grid().
ProcessGrid step_grid(const Options& o, int step, int world);

/// What step @p step trains on its grid: the options' model (step 6: with 4 experts and capacity
/// factor 1 when the model is dense; Megatron-SP when its default grid has tp > 1), sp mode,
/// microbatches, ZeRO and buckets.
HybridConfig step_config(const Options& o, int step, int world);

/// Why step @p step cannot train on a job of @p world ranks (one clause naming the value and
/// the fix), or "".
std::string step_blocker(const Options& o, int step, int world);

/// Trains @p hc on @p grid (the job's ranks), checks every step's loss and each rank's final
/// parameters against the serial model, shows the per-group traffic table and records it in
/// the summary under "hybrid" -> @p label. Collective.
HybridRun train_hybrid(Context& ctx, const std::string& label, const ProcessGrid& grid, const HybridConfig& hc);

/// Every group's counted traffic of @p run (this rank) against its formula: the planner's exact
/// per-group bytes (planner.hpp: tp all-reduces, the ring's and pp's isends, the gradient
/// all-reduces), Megatron-SP's all-gathers and reduce-scatters along T, MoE's count all-gathers
/// over a split sequence and its fixed-buffer all-to-alls, chapter 02's buckets or ZeRO-1 over
/// dp. A counted op with no formula is a miss, except dropless MoE's routing-dependent exchanges
/// (chapter 06 checks those) and receives.
void check_traffic(Context& ctx, const HybridRun& run, const ProcessGrid& grid, const HybridConfig& hc);

/// Counted calls and bytes of @p op in @p group of @p run (0 when absent).
OpCount counted(const HybridRun& run, const std::string& group, const std::string& op);

}  // namespace fivefold::ch07
