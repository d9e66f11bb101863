// SPDX-License-Identifier: MIT
// Step 3: capacity: fixed padded buffers (as GShard) against variable sizes, and the padding waste.
#include "chapters/06_expert_parallel/steps.hpp"
#include "common/check.hpp"

namespace fivefold::ch06 {

void step3_capacity(Context& ctx, Lab& lab) {
  ModelConfig c = lab.o.cfg;
  if (c.capacity_factor <= 0.0) c.capacity_factor = 1.0;
  const int ep = lab.o.ep;
  const std::int64_t b = c.batch / (ep * lab.o.dp), cap = nn::expert_capacity(c.capacity_factor, c.topk, c.seq, c.experts);
  ctx.narrator.say("With capacity factor " + fmt("%.2f", c.capacity_factor) + " every expert takes at most "
                   "ceil(cf k T / E) = " + std::to_string(cap) + " assignments per sequence, so a rank's block for one "
                   "expert never holds more than b x " + std::to_string(cap) + " = " + std::to_string(b * cap) +
                   " rows: fixed-size buffers, padded with zero rows, one all-to-all per exchange and no count "
                   "exchange (static shapes, as GShard). The experts also run on the padding (zero in, zero out).");
  const EpRun run = train(ctx, lab, c, ep, lab.o.dp, "capacity", !ctx.options.dump.empty() && lab.o.cfg.capacity_factor > 0.0);
  const double waste = run.stats.buffer_rows > 0 ? 1.0 - static_cast<double>(run.stats.real_rows) / run.stats.buffer_rows : 0.0;
  // The same from the serial routing: kept rows of my sequences over buffer rows E * b * cap per layer.
  const SerialRun& ref = serial(ctx, lab, c);
  Groups& g = groups(ctx, lab, ep, lab.o.dp);
  std::int64_t real = 0, buffer = 0;
  for (const auto& step : ref.routing)
    for (const nn::Routing& rt : step) {
      for (std::int64_t v : rows_to(rt, c.seq, g.data().rank() * b, b, ep)) real += v;
      buffer += c.experts * b * cap;
    }
  ctx.check(compare_exact("capacity: real rows / buffer rows sent == the serial routing's", static_cast<double>(run.stats.real_rows) / run.stats.buffer_rows,
                          static_cast<double>(real) / buffer));
  const std::int64_t per_layer = c.experts * b * cap * c.dim * 4;
  ctx.narrator.say("Padding waste on this rank: " + fmt("%.2f", 100.0 * waste) + "% of the rows sent are "
                   "padding; each exchange moves E x b x cap x C x 4 = " + std::to_string(per_layer) +
                   " bytes per layer whatever the routing (dropless moves only the kept rows, at the price of a count "
                   "exchange and shapes known only at run time).");
}

}  // namespace fivefold::ch06
