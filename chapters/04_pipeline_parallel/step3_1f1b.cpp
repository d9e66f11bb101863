// SPDX-License-Identifier: MIT
// Step 3: 1F1B (PipeDream-flush): the same bubble, fewer activations held.
#include "chapters/04_pipeline_parallel/steps.hpp"

namespace fivefold::ch04 {

void step3_1f1b(Context& ctx, Lab& lab) {
  const int p = pp_group(ctx, lab).size(), m = lab.o.microbatches;
  if (!schedule_step(ctx, lab, ScheduleKind::one_f_one_b, 1,
                     "1F1B: stage s runs min(p-1-s, m) forwards (warm-up), then alternates one forward and one "
                     "backward (steady state), then runs the backwards left (cool-down). A microbatch's activations "
                     "leave as soon as its backward ran, so stage s holds at most min(p-s, m) of them instead of m; "
                     "the idle time is the same as GPipe's: (p-1)/(m+p-1)."))
    return;
  if (p > 1)
    ctx.narrator.say("Stage 0 holds min(p, m) = " + std::to_string(std::min(p, m)) + " microbatch(es), stage " +
                     std::to_string(p - 1) + " holds 1 (GPipe: " + std::to_string(m) + " on each stage).");
}

}  // namespace fivefold::ch04
