// SPDX-License-Identifier: MIT
// Step 1: Megatron sequence parallelism: TP's all-reduces become all-gathers and reduce-scatters.
#include "chapters/05_sequence_parallel/steps.hpp"
#include "common/check.hpp"

namespace fivefold::ch05 {

namespace {

/// Bytes of the regions outside attention and MLP for @p positions positions of every sequence:
/// per layer two norms (output [N, C] and 1/rms [N]), the residual h and the output y [N, C];
/// the embedding's output [N, C] and the final norm ([N, C] and [N]). N = B * positions.
std::int64_t region_bytes(const ModelConfig& c, std::int64_t positions) {
  const std::int64_t N = c.batch * positions, C = c.dim;
  return (c.layers * (4 * N * C + 2 * N) + 2 * N * C + N) * 4;
}

}  // namespace

void step1_megatron(Context& ctx, Lab& lab) {
  const ModelConfig& c = lab.o.cfg;
  const int n = ctx.size();
  if (!train(ctx, lab, SpMode::megatron,
             "Megatron-SP on the tp group of " + std::to_string(n) + ": chapter 03's tensor parallelism, but the "
             "norms, the residual adds and the embedding's output hold only T/tp = " + std::to_string(c.seq / n) +
             " of the " + std::to_string(c.seq) + " positions. Before each block an all-gather along T gives it "
             "every position; after it a reduce-scatter sums the ranks' partial outputs AND leaves each rank its own "
             "positions. A reduce-scatter and an all-gather move what one all-reduce moves: the bytes equal TP's. "
             "Our blocks keep the gathered input for the backward (Megatron gathers it again, 1.5 times TP's backward bytes, "
             "to save that memory). The norms saw only my positions: their gain gradients are summed over tp."))
    return;
  // The regions outside attention and MLP, read off the activations one forward keeps.
  SpModel model(ctx.ops, group(ctx, lab, SpMode::megatron), c, SpMode::megatron);
  {
    Uncounted quiet(model.group());
    model.forward_only(batch_of_step(lab.o, 0));
  }
  const nn::ChunkActs& a = model.activations();
  std::int64_t held = a.layers.front()->norm1.x.numel() + a.norm.rstd.numel() + a.norm.y.numel();  // embedding out, final norm
  for (const auto& l : a.layers)
    held += l->norm1.rstd.numel() + l->norm1.y.numel() + l->norm2.rstd.numel() + l->norm2.y.numel() + l->h.numel() +
            l->y.numel();
  held *= 4;
  const std::int64_t want = region_bytes(c, c.seq / n), tp_only = region_bytes(c, c.seq);
  ctx.check(compare_exact("megatron: bytes of the norm/residual regions per rank == formula (T/tp positions)",
                  static_cast<double>(held), static_cast<double>(want)));
  ctx.narrator.say("Those regions per layer: the two norms' outputs and 1/rms, the residual after attention and the "
                   "layer's output, plus the embedding's output and the final norm: (L (4 C + 2) + 2 C + 1) x B x T/tp "
                   "x 4 = " + std::to_string(want) + " bytes on this rank, measured " + std::to_string(held) +
                   "; tensor parallelism alone keeps them for all T: " + std::to_string(tp_only) + ".");
}

}  // namespace fivefold::ch05
