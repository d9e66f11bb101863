// SPDX-License-Identifier: MIT
// Step 3: ring attention: queries stay, key/value blocks travel; online softmax merges them.
#include "chapters/05_sequence_parallel/steps.hpp"

namespace fivefold::ch05 {

void step3_ring(Context& ctx, Lab& lab) {
  const ModelConfig& c = lab.o.cfg;
  const int n = ctx.size();
  ModeRun* run = train(ctx, lab, SpMode::ring,
                       "Ring attention over " + std::to_string(n) + " ranks: each rank keeps the queries of its " +
                           std::to_string(c.seq / n) + " positions; the key/value blocks travel the ring, " +
                           std::to_string(n - 1) + " hop(s), the next hop posted before the current block is "
                           "computed. Each block's partial attention is merged with the online softmax: with "
                           "m = max(lse_a, lse_b), lse = m + log(e^(lse_a - m) + e^(lse_b - m)) and "
                           "out = out_a e^(lse_a - lse) + out_b e^(lse_b - lse). Blocks wholly after my queries "
                           "are skipped (causal). Backward: k/v travel again, each with its dK/dV, which every "
                           "rank adds its share to and which arrive home after " + std::to_string(n) + " hops.");
  if (!run) return;
  show_work(ctx, lab, SpMode::ring);
}

}  // namespace fivefold::ch05
