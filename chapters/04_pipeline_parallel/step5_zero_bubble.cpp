// SPDX-License-Identifier: MIT
// Step 5: zero bubble (ZB-H1): the backward split into B and W, W's deferred into the cool-down.
#include "chapters/04_pipeline_parallel/steps.hpp"

namespace fivefold::ch04 {

void step5_zero_bubble(Context& ctx, Lab& lab) {
  const int p = pp_group(ctx, lab).size(), m = lab.o.microbatches;
  if (!schedule_step(ctx, lab, ScheduleKind::zb_h1, 1,
                     "Zero bubble (ZB-H1): a backward is two passes. B computes d loss / d input, which the previous "
                     "stage waits for; W computes the weight gradients, which nobody waits for. Stage s runs 1F1B's "
                     "order but keeps s W's back and runs them in its cool-down, where 1F1B idles. With equal F, B "
                     "and W times the bubble drops from (p-1)/(m+p-1) to (p-1)/(3m+p-1) (for m >= p); the deferred "
                     "W's keep their activations, so every stage holds min(p, m) microbatches, 1F1B's stage 0."))
    return;
  ctx.narrator.say((m >= p ? "ZB-H1 with p = " + std::to_string(p) + ", m = " + std::to_string(m) + ": " +
                                  fmt("%.3f", bubble_formula(ScheduleKind::zb_h1, p, m, 1)) + " vs 1F1B's " +
                                  fmt("%.3f", bubble_formula(ScheduleKind::one_f_one_b, p, m, 1)) + "."
                            : std::string("With m < p the step is as long as its chain of dependencies (the last "
                                          "microbatch's forward down all p stages, its B back up), longer than a "
                                          "stage's work, and W's cannot shorten it: the closed form does not apply.")) +
                   " W runs after B here, so a gradient synchroniser that reduces a unit once its gradients are "
                   "complete waits for the W (UnitHooks::after_backward fires after it).");
}

}  // namespace fivefold::ch04
