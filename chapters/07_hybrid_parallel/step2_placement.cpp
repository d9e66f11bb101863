// SPDX-License-Identifier: MIT
// Step 2: placement on nodes. Ranks fill nodes in order (node = rank / gpus-per-node), so the
// axes left in --order (small strides) stay inside a node and the axes on the right cross
// nodes. Inside a node GPUs talk over NVLink (hundreds of GB/s); between nodes over the network
// (tens of GB/s per GPU). So the axis that moves the most bytes, most often, on the critical
// path — TP, every layer, forward and backward — goes innermost, and PP (one activation per
// stage boundary) or DP (once per step, overlappable) goes outermost. The bytes per rank and
// step of each axis come from the model (placement.hpp states the formulas); two orders are
// compared by the bytes their node-crossing groups carry.
// Run: build/cpu/bin/ch07_hybrid_parallel --step 2 --world 16 --tp 2 --pp 4 --gpus-per-node 4
//      (add --dim 4096 --heads 32 --kv-heads 8 --ffn 14336 --layers 32 --vocab 128256 --seq 4096
//       --batch 256 for Llama-3-8B shapes)
#include <algorithm>

#include "chapters/07_hybrid_parallel/placement.hpp"
#include "chapters/07_hybrid_parallel/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch07 {

namespace {

std::string where(const Placement& p) {
  if (p.group_size == 1) return "-";
  return p.inside_node ? "inside a node" : "spans " + std::to_string(p.max_nodes) + " nodes";
}

}  // namespace

void step2_placement(Context& ctx, const Options& o) {
  const ProcessGrid grid = make_grid(o, grid_world(o, ctx.size()));
  const int G = o.gpus_per_node, n = grid.world_size();
  const int nodes = (n + G - 1) / G;
  const ModelConfig& m = o.model;
  ctx.narrator.say("Grid " + grid.describe() + " on " + std::to_string(nodes) + " node(s) of " + std::to_string(G) +
                   " GPUs: node = rank / " + std::to_string(G) + ".\nModel: B " + std::to_string(m.batch) + ", T " +
                   std::to_string(m.seq) + ", C " + std::to_string(m.dim) + ", H " + std::to_string(m.heads) +
                   ", Hkv " + std::to_string(m.kv_heads) + ", F " + std::to_string(m.ffn) + ", L " +
                   std::to_string(m.layers) + ", V " + std::to_string(m.vocab) + ", E " + std::to_string(m.experts) +
                   " (k " + std::to_string(m.topk) + "). Tokens per rank n_tok = B*T/(dp*ep*sp) = " +
                   fmt("%g", 1.0 * m.batch * m.seq /
                                 (grid.size(Axis::dp) * grid.size(Axis::ep) * grid.size(Axis::sp))) +
                   "; L_s = L/pp layers per stage.");

  const std::vector<AxisTraffic> rows = traffic_per_step(grid, m);
  Table t{"Traffic per rank per optimizer step, and where each axis's groups land",
          {"axis", "group", "what moves", "bytes/rank/step", "ranks/group", "placement"}, {}};
  for (const AxisTraffic& r : rows) {
    const Placement p = placement(grid, r.group, G);
    t.add({axis_name(r.axis), r.group.name(), r.what, human_bytes(r.bytes), std::to_string(p.group_size), where(p)});
  }
  ctx.narrator.table(t);
  std::string formulas = "The formulas (fp32, bytes sent per rank; the README derives them):\n";
  for (const AxisTraffic& r : rows) formulas += "  " + std::string(axis_name(r.axis)) + ": " + r.formula + "\n";
  const RankParams p = rank_params(grid, m);
  formulas += "  Psi = parameters of a first-stage rank: dense " + fmt("%.0f", p.dense) + ", experts " +
              fmt("%.0f", p.expert) + ".";
  ctx.narrator.say(formulas);

  // The same degrees in other orders: which groups cross nodes, and the bytes they carry.
  std::vector<std::string> orders{grid.order_name()};
  for (const char* other : {"tp-sp-ep-dp-pp", "tp-sp-ep-pp-dp", "pp-dp-ep-sp-tp"})
    if (std::find(orders.begin(), orders.end(), other) == orders.end()) orders.push_back(other);
  Table c{"Orders compared (same degrees, " + std::to_string(G) + " GPUs per node)",
          {"order", "tp", "sp", "ep", "dp", "pp", "bytes/step a rank sends off-node (max)"}, {}};
  std::string best;
  double best_bytes = 0;
  for (const std::string& order : orders) {
    const ProcessGrid g(grid.sizes(), order, n);
    std::vector<std::string> row{order};
    for (Axis a : kAllAxes) row.push_back(where(placement(g, AxisSet{a}, G)));
    const double crossing = max_cross_node_bytes(g, traffic_per_step(g, m), G);
    row.push_back(human_bytes(crossing));
    c.add(row);
    if (best.empty() || crossing < best_bytes) best = order, best_bytes = crossing;
  }
  ctx.narrator.table(c);
  ctx.narrator.say(
      "Rule: the fastest-varying axes (left in --order) are neighbours in rank, hence on the same node.\n"
      "Put the axis with the most bytes on the critical path innermost: TP (all-reduces in every layer,\n"
      "forward and backward, nothing to overlap them with), then SP/CP and EP; DP moves the gradients\n"
      "once per step and overlaps with the backward pass; PP sends one activation per stage boundary.\n"
      "tp-sp-ep-dp-pp keeps a DP group close (small stride) and spreads the pipeline stages over nodes;\n"
      "tp-sp-ep-pp-dp keeps the stages close and spreads DP. Which is better depends on the model and\n"
      "the batch (Psi vs n_tok*C): here " + best + " sends the fewest bytes off-node.\n"
      "Off-node bytes follow the pattern: a ring rank's bytes leave the node when its successor is\n"
      "elsewhere; a pipeline stage sends forward and backward to its neighbouring stages only.");
  if (nodes == 1)
    ctx.narrator.say("(Everything fits in one node here; try --gpus-per-node 2 or --world 16 --tp 2 --pp 4.)");
}

}  // namespace fivefold::ch07
