// SPDX-License-Identifier: MIT
// Step 4: interleaved 1F1B: v chunks per rank, a smaller bubble for more messages.
#include "chapters/04_pipeline_parallel/steps.hpp"

namespace fivefold::ch04 {

void step4_interleaved(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  const int p = pp_group(ctx, lab).size(), m = lab.o.microbatches, v = lab.o.virtual_stages;
  if (!schedule_step(ctx, lab, ScheduleKind::interleaved, v,
                     "Interleaving: the model is cut into v*p = " + std::to_string(v * p) + " chunks of " +
                         std::to_string(cfg.layers / std::max(v * p, 1)) + " layer(s); rank r holds chunks r, r+p, "
                         "... (" + std::to_string(v) + " per rank), so a microbatch goes round the ranks " +
                         std::to_string(v) + " times. Each pass is 1/v of a stage, so the fill and drain shrink "
                         "v-fold: bubble (p-1)/(v*m+p-1). The price: every chunk boundary is a message, 2(v*p-1)*m per "
                         "step instead of 2(p-1)*m, which is (v*p-1)/(p-1) times as many (not v times)."))
    return;
  const int peak0 = peak_passes_formula(ScheduleKind::interleaved, p, m, v, 0);
  ctx.narrator.say("Rank 0 holds up to " + std::to_string(peak0) + " chunk passes = " + fmt("%.2f", double(peak0) / v) +
                   " microbatches' worth of a whole stage (2(p-1) + (v-1)p + 1 chunks; 1F1B: " +
                   std::to_string(std::min(p, m)) + "). Messages per step: " + std::to_string(messages_formula(p, m, v)) +
                   " vs 1F1B's " + std::to_string(messages_formula(p, m, 1)) + ".");
}

}  // namespace fivefold::ch04
