// SPDX-License-Identifier: MIT
// Placement of groups on nodes and the per-axis traffic model of placement.hpp.
#include "chapters/07_hybrid_parallel/placement.hpp"

#include <algorithm>
#include <set>

namespace fivefold::ch07 {

RankParams rank_params(const ProcessGrid& g, const ModelConfig& m) {
  const double C = m.dim, F = m.ffn, V = m.vocab, E = m.experts, hd = m.head_dim();
  const double tp = g.size(Axis::tp), ep = g.size(Axis::ep), pp = g.size(Axis::pp);
  const double L = m.layers, M = static_cast<double>(m.moe_layers().size());
  const double attention = (2.0 * m.heads + 2.0 * m.kv_heads) * hd * C;  // q, k, v, o projections
  RankParams p;
  // Per stage: L/pp layers. TP shards the projections and MLPs; norms and routers are replicated.
  p.dense = L / pp * (attention / tp + 2 * C) + (L - M) / pp * 3 * F * C / tp + M / pp * E * C;
  p.dense += pp == 1 ? 2 * V * C / tp + C : V * C / tp;  // embedding (+ lm_head and norm when one stage)
  p.expert = M / pp * (E / ep) * 3 * F * C / tp;
  return p;
}

std::vector<AxisTraffic> traffic_per_step(const ProcessGrid& g, const ModelConfig& m) {
  const double tp = g.size(Axis::tp), sp = g.size(Axis::sp), ep = g.size(Axis::ep), dp = g.size(Axis::dp),
               pp = g.size(Axis::pp);
  const double C = m.dim, hd = m.head_dim(), k = m.experts > 0 ? m.topk : 0;
  const double n_tok = 1.0 * m.batch * m.seq / (dp * ep * sp);  // tokens per rank per step
  const double L_s = m.layers / pp, M_s = m.moe_layers().size() / pp;
  auto ring = [](double n) { return n > 1 ? 2 * (n - 1) / n : 0.0; };  // all-reduce factor
  std::vector<AxisTraffic> rows;

  // TUTORIAL: TP all-reduces activations in every layer, forward and backward: the heaviest axis.
  rows.push_back({Axis::tp, AxisSet{Axis::tp}, Pattern::ring, "2+2 all-reduce/layer, [n_tok, C]",
                  "4 L_s * 2(tp-1)/tp * n_tok*C*4", 4 * L_s * ring(tp) * n_tok * C * 4});
  // Ring attention: a rank's K and V blocks visit the sp-1 other ranks; backward sends K, V and
  // the accumulating dK, dV around again (twice the forward bytes).
  rows.push_back({Axis::sp, AxisSet{Axis::sp}, Pattern::ring, "ring attention: K,V blocks (fwd), K,V,dK,dV (bwd)",
                  "L_s * (6 sp-4) n_tok*(Hkv*hd/tp)*4",
                  L_s * (sp > 1 ? 6 * sp - 4 : 0) * n_tok * (m.kv_heads * hd / tp) * 4});
  const RankParams p = rank_params(g, m);
  if (sp > 1)  // TUTORIAL: every gradient saw only this rank's positions: summed over sp too
    rows.push_back({Axis::sp, AxisSet{Axis::sp}, Pattern::ring, "all-reduce of every gradient (other positions)",
                    "2(sp-1)/sp * Psi*4", ring(sp) * (p.dense + p.expert) * 4});
  rows.push_back({Axis::ep, AxisSet{Axis::ep}, Pattern::all_to_all,
                  m.experts > 0 ? "dispatch+combine all-to-all, fwd+bwd, k*[n_tok, C]"
                                : "nothing: dense model (pass --experts E)",
                  "4 M_s * (ep-1)/ep * k*n_tok*C*4", 4 * M_s * (ep - 1) / ep * k * n_tok * C * 4});

  // DP: gradients are all-reduced over every rank that holds the same parameters.
  if (ep > 1 && m.experts > 0) {
    rows.push_back({Axis::dp, AxisSet{Axis::ep, Axis::dp}, Pattern::ring,
                    "all-reduce of dense grads (ep x dp replicas)",
                    "2(n-1)/n * Psi_dense*4, n = ep*dp", ring(ep * dp) * p.dense * 4});
    rows.push_back({Axis::dp, AxisSet{Axis::dp}, Pattern::ring, "all-reduce of expert grads",
                    "2(dp-1)/dp * Psi_expert*4", ring(dp) * p.expert * 4});
  } else {
    const AxisSet group = ep > 1 ? AxisSet{Axis::ep, Axis::dp} : AxisSet{Axis::dp};
    rows.push_back({Axis::dp, group, Pattern::ring, "all-reduce of the gradients",
                    "2(n-1)/n * Psi*4, n = " + group.name(),
                    ring(g.size(group)) * (p.dense + p.expert) * 4});
  }
  // PP: one activation tensor forward and its gradient backward at each stage boundary.
  rows.push_back({Axis::pp, AxisSet{Axis::pp}, Pattern::pipeline, "send/recv at stage boundaries, [n_tok, C] fwd + bwd",
                  "2 * n_tok*C*4", pp > 1 ? 2 * n_tok * C * 4 : 0.0});
  return rows;
}

Placement placement(const ProcessGrid& grid, const AxisSet& s, int gpus_per_node) {
  Placement out;
  out.group_size = grid.size(s);
  for (const auto& members : grid.groups(s)) {
    std::set<int> nodes;
    for (int r : members) nodes.insert(r / gpus_per_node);  // TUTORIAL: ranks fill node 0 first
    out.max_nodes = std::max(out.max_nodes, static_cast<int>(nodes.size()));
  }
  out.inside_node = out.max_nodes == 1;
  return out;
}

double cross_node_bytes(const ProcessGrid& grid, const AxisTraffic& t, int gpus_per_node, int rank) {
  const std::vector<int> g = grid.group_of(rank, t.group);
  const int n = static_cast<int>(g.size()), pos = grid.group_rank(rank, t.group);
  if (n == 1 || t.bytes == 0) return 0;
  auto far = [&](int other) { return other / gpus_per_node != rank / gpus_per_node; };
  switch (t.pattern) {
    case Pattern::ring:  // TUTORIAL: a ring rank sends everything to its successor
      return far(g[(pos + 1) % n]) ? t.bytes : 0;
    case Pattern::all_to_all: {
      int remote = 0;
      for (int other : g) remote += far(other) ? 1 : 0;
      return t.bytes * remote / (n - 1);
    }
    case Pattern::pipeline:  // half forward (not from the last stage), half backward (not from the first)
      return (pos + 1 < n && far(g[pos + 1]) ? t.bytes / 2 : 0) + (pos > 0 && far(g[pos - 1]) ? t.bytes / 2 : 0);
  }
  return 0;
}

double max_cross_node_bytes(const ProcessGrid& grid, const std::vector<AxisTraffic>& rows, int gpus_per_node) {
  double worst = 0;
  for (int r = 0; r < grid.world_size(); ++r) {
    double bytes = 0;
    for (const AxisTraffic& t : rows) bytes += cross_node_bytes(grid, t, gpus_per_node, r);
    worst = std::max(worst, bytes);
  }
  return worst;
}

}  // namespace fivefold::ch07
