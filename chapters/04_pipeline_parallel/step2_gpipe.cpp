// SPDX-License-Identifier: MIT
// Step 2: GPipe: m microbatches, all forwards then all backwards.
#include "chapters/04_pipeline_parallel/steps.hpp"

namespace fivefold::ch04 {

void step2_gpipe(Context& ctx, Lab& lab) {
  const int p = pp_group(ctx, lab).size(), m = lab.o.microbatches, b = lab.o.cfg.batch / m;
  if (!schedule_step(ctx, lab, ScheduleKind::gpipe, 1,
                     "The batch of " + std::to_string(lab.o.cfg.batch) + " sequences is cut into m = " +
                         std::to_string(m) + " microbatches of " + std::to_string(b) +
                         ". Every stage runs the m forwards, then the m backwards; each microbatch's gradients ADD UP "
                         "in the parameters' gradients, scaled so that their sum is the mean over the whole batch; the "
                         "optimizer steps once, after the last. Each stage idles p-1 forward times and p-1 backward times "
                         "in all (stage s: s forwards' wait before its first forward, p-1-s forwards' and backwards' "
                         "wait for its first gradient, s backwards' at the end): the bubble is (p-1)/(m+p-1) of the step. Every stage holds the activations of all m "
                         "microbatches before its first backward."))
    return;
  ctx.narrator.say("Bubble (p-1)/(m+p-1) = " + std::to_string(p - 1) + "/" + std::to_string(m + p - 1) + " = " +
                   fmt("%.3f", bubble_formula(ScheduleKind::gpipe, p, m, 1)) +
                   "; activations held: m = " + std::to_string(m) + " microbatches on every stage.");
}

}  // namespace fivefold::ch04
