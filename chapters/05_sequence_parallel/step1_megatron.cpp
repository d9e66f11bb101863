// SPDX-License-Identifier: MIT
// Step 1: Megatron sequence parallelism: TP's all-reduces become all-gathers and reduce-scatters.
#include "chapters/05_sequence_parallel/steps.hpp"

namespace fivefold::ch05 {

void step1_megatron(Context& ctx, Lab& lab) {
  const ModelConfig& c = lab.o.cfg;
  const int n = ctx.size();
  if (!train(ctx, lab, SpMode::megatron,
             "Megatron-SP on the tp group of " + std::to_string(n) + ": chapter 03's tensor parallelism, but the "
             "norms, the residual adds and the embedding's output hold only T/tp = " + std::to_string(c.seq / n) +
             " of the " + std::to_string(c.seq) + " positions. Before each block an all-gather along T gives it "
             "every position; after it a reduce-scatter sums the ranks' partial outputs AND leaves each rank its own "
             "positions. A reduce-scatter and an all-gather move what one all-reduce moves: the bytes equal TP's. "
             "Our blocks keep the gathered input for the backward (Megatron gathers it again, 1.5 times the bytes, "
             "to save that memory). The norms saw only my positions: their gain gradients are summed over tp."))
    return;
  const std::int64_t region = static_cast<std::int64_t>(c.batch) * (c.seq / n) * c.dim * 4;
  ctx.narrator.say("Each norm's saved input on this rank: B x T/tp x C x 4 = " + std::to_string(region) +
                   " bytes (TP alone: " + std::to_string(region * n) + ").");
}

}  // namespace fivefold::ch05
