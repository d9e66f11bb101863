// SPDX-License-Identifier: MIT
// Step 2: Ulysses: all-to-alls swap "my positions, all heads" for "all positions, my heads".
#include "chapters/05_sequence_parallel/steps.hpp"
#include "chapters/05_sequence_parallel/ulysses.hpp"

namespace fivefold::ch05 {

void step2_ulysses(Context& ctx, Lab& lab) {
  const ModelConfig& c = lab.o.cfg;
  const int n = ctx.size();
  const KvHeads kv = ulysses_kv_heads(c.kv_heads, n, 0);
  if (!train(ctx, lab, SpMode::ulysses,
             "Ulysses over " + std::to_string(n) + " ranks: each rank projects q, k, v for its " +
                 std::to_string(c.seq / n) + " positions of all " + std::to_string(c.heads) +
                 " heads; an all-to-all each turns them into all " + std::to_string(c.seq) + " positions of " +
                 std::to_string(c.heads / n) + " query head(s) and " + std::to_string(kv.count) +
                 " kv head(s); plain causal attention runs on those heads; one all-to-all brings the output back. "
                 "4 all-to-alls forward and 4 backward per layer." +
                 (n > c.kv_heads ? " With sp > Hkv each kv head goes to " + std::to_string(n / c.kv_heads) +
                                       " ranks and their dK/dV are summed on the way back."
                                 : "")))
    return;
  ctx.narrator.say("Per layer and pass this rank sends b (T/sp) hd (2H + 2 max(Hkv, sp)) x 4 = " +
                   std::to_string(UlyssesAttention::bytes_per_layer(c, n, c.batch, c.seq)) +
                   " bytes; the head count bounds sp (H % sp == 0).");
}

}  // namespace fivefold::ch05
