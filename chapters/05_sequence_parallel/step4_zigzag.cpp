// SPDX-License-Identifier: MIT
// Step 4: zigzag: two chunks per rank, one early and one late, so causal work is even.
#include "chapters/05_sequence_parallel/steps.hpp"

namespace fivefold::ch05 {

void step4_zigzag(Context& ctx, Lab& lab) {
  const ModelConfig& c = lab.o.cfg;
  const int n = ctx.size();
  const std::int64_t chunk = c.seq / (2 * n);
  ModeRun* run = train(ctx, lab, SpMode::zigzag,
                       "Zigzag over " + std::to_string(n) + " ranks: the sequence is cut into 2 sp = " +
                           std::to_string(2 * n) + " chunks of " + std::to_string(chunk) +
                           "; every rank holds one early and one late chunk (rank 0: positions 0.." +
                           std::to_string(chunk - 1) + " and " + std::to_string(c.seq - chunk) + ".." +
                           std::to_string(c.seq - 1) + "). With contiguous blocks the causal mask leaves rank r "
                           "r + 1 blocks to compute and the last rank waits for nobody while the first idles; "
                           "zigzag gives every rank 2 sp + 1 of the (2 sp)^2 half-size pairs.");
  if (!run) return;
  show_work(ctx, lab, SpMode::zigzag);
}

}  // namespace fivefold::ch05
