// SPDX-License-Identifier: MIT
// Step 7: placement of a real run. The payloads each group counted in a training step, put on
// the wire by an explicit model (who sends how much to whom), then on nodes of --gpus-per-node
// consecutive ranks: which bytes stay inside a node and which cross, for the run's --order and
// for the reversed order, next to step 2's per-axis formula.
// Wire model, per rank and call (n = group size, members in group order, ring successor = next):
//   all_reduce of N: ring reduce-scatter + all-gather, 2(n-1)/n N to the successor;
//   reduce_scatter of S: (n-1)/n S to the successor; all_gather of a share s: (n-1) s likewise;
//   all_to_all(v) of P: P/n to every other member (equal shares); isend: pp's activations to the
//   next stage and gradients to the previous, sp's ring blocks to the successor.
// Run: mpirun -np 16 build/cpu/bin/ch07_hybrid_parallel --step 7 --tp 2 --pp 4 --layers 4
#include <algorithm>

#include "chapters/07_hybrid_parallel/hybrid_run.hpp"
#include "chapters/07_hybrid_parallel/placement.hpp"
#include "chapters/07_hybrid_parallel/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch07 {

namespace {

/// Bytes this rank's calls in group @p g put on the wire, per peer (world ranks of @p grid).
std::map<int, double> wire(const ProcessGrid& grid, const AxisArray& me, const std::string& g, const CommCounts& ops) {
  const AxisSet s = AxisSet::parse(g);
  const int rank = grid.rank_of(me);
  const std::vector<int> members = grid.group_of(rank, s);
  const int n = static_cast<int>(members.size()), i = grid.group_rank(rank, s);
  std::map<int, double> to;
  if (n == 1) return to;
  const int next = members[(i + 1) % n], prev = members[(i + n - 1) % n];
  for (const auto& [op, c] : ops) {
    const double P = static_cast<double>(c.payload_bytes);
    if (op == "all_reduce" || op == "iall_reduce") to[next] += 2.0 * (n - 1) / n * P;  // TUTORIAL: not n x N
    else if (op == "reduce_scatter" || op == "ireduce_scatter") to[next] += (n - 1.0) / n * P;
    else if (op == "all_gather" || op == "iall_gather") to[next] += (n - 1.0) * P;
    else if (op == "all_to_all" || op == "all_to_allv") {
      for (int q : members)
        if (q != rank) to[q] += P / n;
    } else if (op == "isend" && g == "pp") {  // forward to the next stage, backward to the previous
      const bool first = i == 0, last = i == n - 1;
      if (!last) to[next] += first ? P : P / 2;
      if (!first) to[prev] += last ? P : P / 2;
    } else if (op == "isend") {
      to[next] += P;
    }
  }
  return to;
}

}  // namespace

void step7_wire(Context& ctx, const Options& o) {
  int step = 0;
  for (int s : {4, 5, 6})
    if (!step && step_blocker(o, s, ctx.size()).empty()) step = s;
  if (!step) {
    ctx.narrator.say("Step 7 places a training run of steps 4-6 on nodes, and none can train this layout: " +
                     step_blocker(o, 4, ctx.size()) + ".\nSkipped (e.g. mpirun -np 16 ch07_hybrid_parallel --step 7 --tp 2 --pp 4 --layers 4).");
    return;
  }
  const ProcessGrid grid = step_grid(o, step, ctx.size());
  HybridConfig hc = step_config(o, step, ctx.size());
  hc.model.steps = 1;
  const int G = o.gpus_per_node;
  ctx.narrator.say("7a. One training step of step " + std::to_string(step) + "'s layout (" + grid.describe() +
                   "), its payloads counted per group; nodes of " + std::to_string(G) + " consecutive ranks.");
  const HybridRun run = train_hybrid(ctx, "wire", grid, hc);

  // The same coordinates under the reversed order: the payloads are those of the coordinates.
  std::vector<Axis> rev = grid.order();
  std::reverse(rev.begin(), rev.end());
  std::string rev_name;
  for (Axis a : rev) rev_name += (rev_name.empty() ? "" : "-") + std::string(axis_name(a));
  const ProcessGrid other(grid.sizes(), rev_name, grid.world_size());
  const AxisArray me = grid.coords(ctx.rank());
  std::string line;
  double mine[2][2] = {{0, 0}, {0, 0}};  // [order][inside, across]
  for (int k = 0; k < 2; ++k) {
    const ProcessGrid& g = k == 0 ? grid : other;
    const int r = g.rank_of(me);
    for (const char* name : kHybridGroups)
      for (const auto& [peer, bytes] : wire(g, me, name, run.groups.at(name)))
        mine[k][peer / G == r / G ? 0 : 1] += bytes / run.steps;
  }
  Table t;
  t.title = "Wire bytes per step of every rank (model above), inside a node vs across nodes";
  t.header = {"order", "group", "wire bytes/step (all ranks)", "across nodes", "step 2 formula x ranks"};
  const std::vector<AxisTraffic> formula = traffic_per_step(grid, hc.model);
  for (int k = 0; k < 2; ++k) {
    const ProcessGrid& g = k == 0 ? grid : other;
    for (const char* name : kHybridGroups) {
      double all = 0, across = 0;
      const std::map<int, double> w = wire(g, me, name, run.groups.at(name));
      for (const auto& [peer, bytes] : w) (peer / G == g.rank_of(me) / G ? all : across) += bytes / run.steps;
      all += across;
      Tensor sums = ctx.ops.upload(Tensor::from_vector(std::vector<float>{static_cast<float>(all), static_cast<float>(across)}, {2}));
      {
        Uncounted quiet(ctx.world);
        ctx.world.all_reduce(sums);
      }
      const std::vector<float> h = sums.to_vector();
      double f = 0;
      for (const AxisTraffic& row : formula)
        if (axis_name(row.axis) == std::string(name)) f += row.bytes * grid.world_size();
      if (h[0] > 0 || f > 0)
        t.add({g.order_name(), name, human_bytes(h[0]), human_bytes(h[1]), human_bytes(f)});
    }
  }
  ctx.show(t);
  ctx.say_ranks("order " + grid.order_name() + ": " + human_bytes(mine[0][0]) + " inside, " + human_bytes(mine[0][1]) +
                " across; order " + other.order_name() + ": " + human_bytes(mine[1][0]) + " inside, " +
                human_bytes(mine[1][1]) + " across");
  // A claim the run can refute: a group that fits in a node and lies inside one sends nothing across.
  for (const char* name : kHybridGroups) {
    const Placement p = placement(grid, AxisSet::parse(name), G);
    if (!p.inside_node || p.group_size == 1) continue;
    double across = 0;
    for (const auto& [peer, bytes] : wire(grid, me, name, run.groups.at(name)))
      if (peer / G != ctx.rank() / G) across += bytes;
    ctx.check(compare_exact(std::string(name) + " groups inside a node under " + grid.order_name() +
                                ": wire bytes across nodes == 0", across, 0.0));
  }
  nlohmann::json& sec = ctx.summary.sections["placement"];
  sec["gpus_per_node"] = G;
  sec["orders"] = {grid.order_name(), other.order_name()};
  sec["ranks"] = nlohmann::json::array();
  const nlohmann::json j = {{"inside", mine[0][0]}, {"across", mine[0][1]}, {"inside_reversed", mine[1][0]}, {"across_reversed", mine[1][1]}};
  for (const std::string& s : ctx.gather(j.dump())) sec["ranks"].push_back(nlohmann::json::parse(s));
}

}  // namespace fivefold::ch07
