// SPDX-License-Identifier: MIT
// Step 4: load balance over N steps with and without the aux loss, and what imbalance costs.
#include <algorithm>

#include "chapters/06_expert_parallel/steps.hpp"

namespace fivefold::ch06 {

namespace {


/// Trains @p steps steps of @p c and adds a row every few steps: max/mean load over the
/// experts (summed over every rank's tokens, averaged over the MoE layers), dropped share, and
/// the expert time of the busiest rank against the mean rank.
void balance_run(Context& ctx, Lab& lab, const ModelConfig& c, int steps, const std::string& label, Table& t,
                 nlohmann::json& sec) {
  Groups& g = groups(ctx, lab, lab.o.ep, lab.o.dp);
  EpModel model(ctx.ops, g.ep(), g.dp(), g.data(), c);
  model.set_fixed_buffers(false);  // only the kept rows travel: a busy expert means a busy rank
  auto update = model.make_update(nn::AdamWConfig::from(c));
  for (int k = 0; k < steps; ++k) {
    model.reset_stats();
    model.step(*update, batch_of_step(c, k));
    double imbalance = 0, dropped = 0, assigned = 0;
    for (const EpMoeLayer* l : model.moe_layers()) {
      const nn::Routing& r = l->routing();
      std::vector<float> load(c.experts + 2);
      for (int e = 0; e < c.experts; ++e) load[e] = static_cast<float>(r.expert_tokens[e].size());
      load[c.experts] = static_cast<float>(r.dropped);
      load[c.experts + 1] = static_cast<float>(r.tokens * r.topk);
      Tensor sum = ctx.ops.upload(Tensor::from_vector(load, {c.experts + 2}));
      {
        Uncounted quiet(g.data());
        g.data().all_reduce(sum);
      }
      const Tensor h = sum.to(Device::host);
      double mx = 0, total = 0;
      for (int e = 0; e < c.experts; ++e) {
        mx = std::max<double>(mx, h.at<float>(e));
        total += h.at<float>(e);
      }
      imbalance += total > 0 ? mx / (total / c.experts) : 0;
      dropped += h.at<float>(c.experts);
      assigned += h.at<float>(c.experts + 1);
    }
    imbalance /= static_cast<double>(model.moe_layers().size());
    const double mine = model.stats().expert_seconds, slowest = ctx.max_over_ranks(mine);
    Tensor m = ctx.ops.upload(Tensor::from_vector(std::vector<float>{static_cast<float>(mine)}, {1}));
    {
      Uncounted quiet(ctx.world);
      ctx.world.all_reduce(m);
    }
    const double mean = m.to(Device::host).at<float>(0) / ctx.size();
    sec[label].push_back({{"step", k}, {"max_over_mean", imbalance}, {"dropped_share", dropped / assigned},
                          {"expert_ms_max", slowest * 1e3}, {"expert_ms_mean", mean * 1e3}});
    if (k == 0 || k == steps - 1 || (k + 1) % std::max(1, steps / 4) == 0)
      t.add({label, std::to_string(k), fmt("%.3f", imbalance), fmt("%.4f", dropped / assigned), fmt("%.3f", slowest * 1e3),
             fmt("%.3f", mean * 1e3), fmt("%.3f", (slowest - mean) * 1e3)});
  }
}

}  // namespace

void step4_balance(Context& ctx, Lab& lab) {
  ModelConfig c = lab.o.cfg;
  if (c.capacity_factor <= 0.0) c.capacity_factor = 1.0;  // so that imbalance shows as drops
  const double coef = c.aux_coef > 0 ? c.aux_coef : 0.01;
  const int n = lab.o.balance_steps;
  ctx.narrator.say("Load balance over " + std::to_string(n) + " steps, capacity factor " +
                   fmt("%.2f", c.capacity_factor) + ", without the aux loss and with --aux-coef " + fmt("%.3f", coef) +
                   ". The Switch aux loss coef x E x sum_e f_e P_e (f_e: share of assignments to e, P_e: mean router "
                   "probability of e) is smallest when both are uniform: its gradient pushes the router towards "
                   "balance. Imbalance costs twice: assignments over capacity are dropped, and every rank waits in "
                   "the all-to-all for the one whose experts got the most rows (here only the kept rows travel, "
                   "variable sizes: with step 3's padded buffers every expert would compute the same rows).");
  Table t{"Load per step (max / mean over experts, every rank's tokens), dropped share, expert time per step",
          {"run", "step", "max / mean", "dropped", "busiest rank ms", "mean rank ms", "waiting ms"},
          {}};
  nlohmann::json& sec = ctx.summary.sections["expert"]["balance"];
  ModelConfig off = c;
  off.aux_coef = 0.0;
  balance_run(ctx, lab, off, n, "no aux loss", t, sec);
  ModelConfig on = c;
  on.aux_coef = coef;
  balance_run(ctx, lab, on, n, "aux " + fmt("%.3f", coef), t, sec);
  ctx.show(t);
  ctx.narrator.say("The waiting column is the busiest rank's expert time minus the mean rank's: what the others spend "
                   "idle at the next all-to-all. At this size the times are small and noisy; bench/bench_ep "
                   "measures the layer at larger sizes.");
}

}  // namespace fivefold::ch06
