// SPDX-License-Identifier: MIT
// Step 1: routing: router, top-k, renormalised gates, capacity per sequence; load per expert.
#include <algorithm>

#include "chapters/06_expert_parallel/steps.hpp"
#include "common/check.hpp"
#include "nn/model.hpp"

namespace fivefold::ch06 {

void step1_routing(Context& ctx, Lab& lab) {
  const ModelConfig& c = lab.o.cfg;
  const int ep = lab.o.ep, dp = lab.o.dp;
  ctx.narrator.say("Each token's router scores the " + std::to_string(c.experts) + " experts (softmax), keeps its top " +
                   std::to_string(c.topk) + " with their probabilities renormalised to sum 1 (the gates); with a "
                   "capacity factor cf > 0 each expert takes at most ceil(cf k T / E) assignments of each sequence, "
                   "first come first served, the rest are dropped (they add 0). Capacity is counted per sequence, so "
                   "a rank that holds whole sequences routes them exactly as the serial model does.");
  nn::Model model(ctx.ops, c);
  const nn::Batch batch = batch_of_step(c, 0);
  model.forward(batch.inputs, batch.targets);
  Groups& g = groups(ctx, lab, ep, dp);
  EpModel par(ctx.ops, g.ep(), g.dp(), g.data(), c);
  const nn::Batch mine = par.mine(batch);
  {
    Uncounted quiet(g.ep());
    par.forward(mine.inputs, mine.targets);
  }
  Table t{"Tokens per expert, step 0's batch (kept assignments; the serial model's routing)",
          {"layer", "load per expert", "max / mean", "dropped share"},
          {}};
  int l = 0, li = 0;
  CheckResult same{"routing on every rank's own sequences == the serial routing (kept assignments per expert)", 0, 0, 0, true};
  for (auto& layer : model.layers()) {
    if (layer.moe()) {
      const nn::Routing& r = layer.moe()->routing();
      std::string loads;
      std::int64_t mx = 0, total = 0;
      std::vector<float> per(c.experts);
      for (int e = 0; e < c.experts; ++e) {
        const auto n = static_cast<std::int64_t>(r.expert_tokens[e].size());
        loads += (e ? " " : "") + std::to_string(n);
        mx = std::max(mx, n);
        total += n;
        per[e] = static_cast<float>(n);
      }
      const double mean = static_cast<double>(total) / c.experts;
      t.add({std::to_string(l), loads, fmt("%.2f", mx / mean),
             fmt("%.3f", static_cast<double>(r.dropped) / static_cast<double>(r.tokens * r.topk))});
      // Every rank's kept assignments per expert, summed over the data group, against serial.
      const nn::Routing& mr = par.moe_layers()[li++]->routing();
      std::vector<float> counts(c.experts);
      for (int e = 0; e < c.experts; ++e) counts[e] = static_cast<float>(mr.expert_tokens[e].size());
      Tensor sum = ctx.ops.upload(Tensor::from_vector(counts, {c.experts}));
      {
        Uncounted quiet(g.data());
        g.data().all_reduce(sum);
      }
      merge(same, compare(same.name, sum, Tensor::from_vector(per, {c.experts}), 0.0));
    }
    ++l;
  }
  ctx.show(t);
  ctx.check(same);
}

}  // namespace fivefold::ch06
