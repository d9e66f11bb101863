// SPDX-License-Identifier: MIT
// Step 5: EP x DP: copies of the expert layout; dense gradients over ep x dp, experts' over dp.
#include "chapters/06_expert_parallel/steps.hpp"

namespace fivefold::ch06 {

void step5_ep_dp(Context& ctx, Lab& lab) {
  const ModelConfig& c = lab.o.cfg;
  const int world = ctx.size();
  int ep = lab.o.ep, dp = lab.o.dp;
  if (dp == 1) {  // the plain layout has no DP: show it on half the ranks' experts, twice
    dp = 2;
    ep = world / 2;
  }
  const std::string bad = world % 2 != 0 && lab.o.dp == 1 ? "an odd number of ranks has no ep x 2 layout"
                                                          : check_layout(c, ep, dp, world);
  if (!bad.empty()) {
    ctx.narrator.say("Skipped at this layout: " + bad + ".");
    return;
  }
  Groups& g = groups(ctx, lab, ep, dp);
  ctx.narrator.say("EP x DP: ep " + std::to_string(ep) + " x dp " + std::to_string(dp) + " in the order " + lab.o.order +
                   ". Every rank holds its own sequences; the ep ranks of one dp copy split the experts; the dp ranks "
                   "that hold the same experts form the expert-data-parallel group. A dense weight saw every rank's "
                   "sequences: its gradient is summed over all " + std::to_string(world) + " ranks (dp, then ep); an "
                   "expert's only over its " + std::to_string(dp) + " copies.");
  ctx.say_ranks("ep rank " + std::to_string(g.ep().rank()) + ", dp rank " +
                std::to_string(g.dp().rank()) + ", experts " +
                std::to_string(experts_of(c.experts, ep, g.ep().rank()).first) + ".." +
                std::to_string(experts_of(c.experts, ep, g.ep().rank()).first + c.experts / ep - 1));
  train(ctx, lab, c, ep, dp, "ep " + std::to_string(ep) + " x dp " + std::to_string(dp), false);
  // The gradient sums, from the model's parameter list: dp carries every parameter this rank
  // holds (the dense ones and its E/ep experts), ep every dense one; once per step each.
  std::int64_t dense = 0, experts = 0;
  for (const nn::ParamSpec& p : nn::model_param_specs(c)) {
    std::int64_t n = 4;
    for (std::int64_t d : p.shape) n *= d;
    (p.name.find(".moe.experts.") == std::string::npos ? dense : experts) += n;
  }
  const std::int64_t local = dense + experts / ep;
  ctx.comm(Context::entry("dp:gradients", "all_reduce", g.dp().counts(), c.steps, c.steps * local));
  ctx.comm(Context::entry("ep:gradients", "all_reduce", g.ep().counts(), ep > 1 ? c.steps : 0, ep > 1 ? c.steps * dense : 0));
}

}  // namespace fivefold::ch06
