// SPDX-License-Identifier: MIT
// Step 6: the whole model under TP, trained with AdamW next to the serial model. Per layer: the
// replicated input norm, attention by heads (f ... g), the replicated post-attention norm, the TP
// MLP (f ... g); around them the vocab-parallel embedding and LM head + loss. Every rank holds
// the same residual stream x, so the norms and their gradients need no communication and their
// weights stay identical on every rank. Checks: initial shards, step-0 logits and gradients,
// the loss of every step, the parameters after the last step (all vs serial), and the norms
// bit for bit across ranks; counts: every block's all-reduces vs the formula.
// Run: mpirun -np 4 build/cpu/bin/ch03_tensor_parallel --step 6 --steps 10 --dump /tmp/ch03
#include "chapters/03_tensor_parallel/steps.hpp"

namespace fivefold::ch03 {

void step6_model(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  Communicator& tp = tp_group(ctx, lab);
  const int n = tp.size();
  ctx.narrator.say("x = embed(tokens)                         vocab-parallel: masked lookup, all-reduce\n"
                   "for each layer:\n"
                   "  x = x + g(attn_heads(f(rmsnorm(x))))     norm replicated; heads split; 1 all-reduce fwd, 1 bwd\n"
                   "  x = x + g(mlp_cols(f(rmsnorm(x))))       gate/up column, down row;      1 all-reduce fwd, 1 bwd\n"
                   "loss = vocab_parallel_ce(lm_head_cols(rmsnorm(x)))   3 all-reduces of [N] fwd, 1 of [N, C] bwd");
  train(ctx, lab, /*narrate=*/true);

  // What each rank holds: its shards (1/tp of every matrix) and full copies of the norms.
  const std::int64_t mine = lab.model->params().numel(), want = params_per_rank(cfg, n);
  std::vector<std::string> all = ctx.gather(std::to_string(4 * mine));
  ctx.summary.param_bytes_per_rank.clear();
  for (const std::string& s : all) ctx.summary.param_bytes_per_rank.push_back(std::stoll(s));
  ctx.say_ranks(std::to_string(mine) + " parameters = " + human_bytes(4.0 * mine) + " (serial model: " +
                std::to_string(lab.serial->params().numel()) + "); the replicated norms are " +
                std::to_string((2 * cfg.layers + 1) * cfg.dim));
  CheckResult c = compare("parameters per rank == (2VC + L(2Hhd C + 2Hkv hd C + 3FC))/tp + (2L+1)C",
                          Tensor::from_vector(std::vector<float>{static_cast<float>(mine)}, {1}),
                          Tensor::from_vector(std::vector<float>{static_cast<float>(want)}, {1}), 0.0);
  ctx.check(c);
  ctx.narrator.say("AdamW keeps two moments per parameter, so gradients + moments also shrink by tp; activations\n"
                   "inside attention/MLP (q, k, v, scores, g, u, h) shrink by tp too, but the residual stream\n"
                   "[N, C] and the norms' inputs are replicated (chapter 05 splits them along the sequence).");
}

}  // namespace fivefold::ch03
