// SPDX-License-Identifier: MIT
// Step 2: dispatch and combine with variable sizes: a count all-to-all, then all-to-allv.
#include "chapters/06_expert_parallel/steps.hpp"

namespace fivefold::ch06 {

void step2_dispatch(Context& ctx, Lab& lab) {
  ModelConfig c = lab.o.cfg;
  c.capacity_factor = 0.0;
  const int ep = lab.o.ep, El = c.experts / ep;
  ctx.narrator.say("Dispatch: each rank sorts its kept assignments (rows: up to k per token) by destination rank and "
                   "expert; an all-to-all of the counts (E numbers per rank) tells every rank how many rows it will "
                   "get for each of its " + std::to_string(El) + " experts; an all-to-allv moves the rows [n, C]. Each "
                   "rank runs its experts on what it received; the reverse all-to-allv brings the outputs home, where "
                   "combine adds gate x output to each token. Backward: the same two exchanges with the forward's "
                   "splits, no count exchange. Dropless here (every assignment kept): sizes vary with the routing.");
  const EpRun run = train(ctx, lab, c, ep, lab.o.dp, "dropless", !ctx.options.dump.empty() && lab.o.cfg.capacity_factor == 0.0);
  ctx.narrator.say("Rows this rank sent over the run: " + std::to_string(run.stats.real_rows) +
                   " (kept assignments of its tokens, itself included); the bytes per exchange are rows x C x 4, "
                   "checked against the serial routing of every step and layer in the closing table.");
}

}  // namespace fivefold::ch06
