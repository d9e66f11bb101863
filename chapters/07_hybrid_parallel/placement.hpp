// SPDX-License-Identifier: MIT
/// @file placement.hpp
/// @brief Where a grid's groups land on nodes, and the bytes each axis moves per training step.
///
/// The traffic model (bytes SENT per rank per optimizer step, fp32, ring/pairwise algorithms;
/// the README derives each line). n_tok = B*T / (dp*ep*sp) tokens per rank (expert-parallel
/// ranks also split the batch: they are data-parallel replicas of the dense layers),
/// L_s = L/pp layers per stage, M_s = (MoE layers)/pp:
/// | axis | collective (group) | bytes per rank per step |
/// |------|--------------------|--------------------------|
/// | tp | 2 all-reduces per layer fwd + 2 bwd of [n_tok, C] (tp) | 4 L_s * 2(tp-1)/tp * n_tok*C*4 |
/// | sp | ring attention: K,V blocks pass sp-1 hops fwd; K,V,dK,dV bwd (sp) | L_s * (6 sp - 4) * n_tok*(Hkv*hd/tp)*4 |
/// | sp | gradient all-reduce of every parameter (sp), when sp > 1 | 2(sp-1)/sp * Psi*4 |
/// | ep | dispatch + combine all-to-all fwd and bwd of k copies of [n_tok, C] (ep) | 4 M_s * (ep-1)/ep * k*n_tok*C*4 |
/// | dp | gradient all-reduce: dense over ep-dp, experts over dp | 2(n-1)/n * Psi*4 per group |
/// | pp | activations fwd + their gradients bwd at a stage boundary (pp) | 2 * n_tok*C*4 |
///
/// Which bytes cross nodes follows the pattern (a ring rank's bytes cross when its successor is
/// on another node; all-to-all shares by the peers' nodes; a pipeline stage's halves by the
/// neighbouring stages' nodes). What it leaves out: the embedding/loss all-reduces of a
/// vocabulary-parallel TP, ZeRO (reduce-scatter + all-gather move the same bytes as the
/// all-reduce), hierarchical or tree algorithms, and overlap with compute.
#pragma once

#include <string>
#include <vector>

#include "common/model_config.hpp"
#include "common/process_grid.hpp"

namespace fivefold::ch07 {

/// How a group's ranks exchange their bytes (decides which messages cross a node boundary).
enum class Pattern {
  ring,        ///< every rank sends to the next member of its group (ring all-reduce, ring attention)
  all_to_all,  ///< every rank sends an equal share to every other member
  pipeline,    ///< half forward to the next member, half backward to the previous (none at the ends)
};

/// The traffic of one axis: which group carries it, what moves, how much.
struct AxisTraffic {
  Axis axis = Axis::tp;     ///< the axis the row is about
  AxisSet group;            ///< the set of axes whose groups carry it (dense DP grads: ep-dp)
  Pattern pattern = Pattern::ring;  ///< who sends to whom inside a group
  std::string what;         ///< "2+2 all-reduce/layer of [n_tok, C]"
  std::string formula;      ///< the formula, in the README's notation
  double bytes = 0;         ///< bytes sent per rank per optimizer step
};

/// Parameter counts a rank holds (fp32 elements): dense and expert parts.
struct RankParams {
  double dense = 0;   ///< attention, norms, dense MLPs, routers, embedding/lm_head (one of them when pp > 1)
  double expert = 0;  ///< the rank's experts (E/ep experts per MoE layer), sharded by tp
};

/// The parameters held by a rank of the first pipeline stage (the largest when pp > 1).
RankParams rank_params(const ProcessGrid& grid, const ModelConfig& m);

/// The traffic of every axis, in canonical order tp, sp, ep, dp, pp; sp gives a second row (the
/// gradients, summed over sp) when sp > 1; dp gives two rows (dense gradients over ep-dp, expert
/// gradients over dp) when ep > 1 and the model has experts.
std::vector<AxisTraffic> traffic_per_step(const ProcessGrid& grid, const ModelConfig& m);

/// Where the groups of a set of axes land: node of rank r = r / gpus_per_node.
struct Placement {
  int group_size = 1;       ///< ranks per group
  int max_nodes = 1;        ///< most nodes any one group spans
  bool inside_node = true;  ///< every group inside one node
};

/// The placement of the S-groups of @p grid on nodes of @p gpus_per_node ranks.
Placement placement(const ProcessGrid& grid, const AxisSet& s, int gpus_per_node);

/// Bytes @p rank sends to other nodes per step for the traffic @p t (by its pattern).
double cross_node_bytes(const ProcessGrid& grid, const AxisTraffic& t, int gpus_per_node, int rank);
/// The most bytes any one rank sends to other nodes per step, summed over @p rows (the rank
/// whose network link is busiest sets the pace).
double max_cross_node_bytes(const ProcessGrid& grid, const std::vector<AxisTraffic>& rows, int gpus_per_node);

}  // namespace fivefold::ch07
