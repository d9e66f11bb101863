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
                           "computed. Each block's partial attention (its output and the log-sum-exp of its scores) "
                           "is merged into a running one by the online softmax (exercise 1). Blocks wholly after my queries "
                           "are skipped (causal). Backward: k/v travel again, each with its dK/dV, which every "
                           "rank adds its share to and which arrive home after " + std::to_string(n) + " hops.");
  if (!run) return;
  show_work(ctx, lab, SpMode::ring);
}

}  // namespace fivefold::ch05
