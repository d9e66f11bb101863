// SPDX-License-Identifier: MIT
// Step 2: the row-parallel linear, on layer 0's down_proj W [C, F]. Rank r holds the columns
// r*F/tp .. of W and the same slice h_r [N, F/tp] of the input, and computes a partial
// y^(r) = h_r W_r^T [N, C] of the whole output: y = sum_r y^(r), one all-reduce (the g operator).
// The backward is local: dh_r = dy W_r and dW_r = dy^T h_r need only this rank's pieces.
// Run: mpirun -np 2 build/cpu/bin/ch03_tensor_parallel --step 2
#include "chapters/03_tensor_parallel/steps.hpp"
#include "chapters/03_tensor_parallel/tp_gather.hpp"

namespace fivefold::ch03 {

void step2_row(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  Communicator& tp = tp_group(ctx, lab);
  const int n = tp.size(), r = tp.rank();
  const std::int64_t N = static_cast<std::int64_t>(cfg.batch) * cfg.seq, C = cfg.dim, F = cfg.ffn;
  const std::string name = "layers.0.mlp.down_proj.weight";

  nn::Model serial(ctx.ops, cfg);
  nn::Param& full = serial.params().get(name);  // [C, F]
  TpParams shards(ctx.ops, cfg, r, n);
  nn::Param& w = shards.get(name);  // [C, F/tp]
  ctx.check(check_shard("down_proj shard == its columns of the serial weight (exact)", w.value, full.value,
                        Split::cols, r, n, 0.0));
  RowParallelLinear row(ctx.ops, tp, w);

  const Tensor h = random_tensor(ctx.ops, lab.o, "step2.h", {N, F});   // the input, as the serial model sees it
  const Tensor dy = random_tensor(ctx.ops, lab.o, "step2.dy", {N, C});  // upstream gradient, replicated
  const Tensor h_r = ctx.ops.upload(block_of(h, Split::cols, r, n));    // [N, F/tp]: what rank r holds
  ctx.narrator.say("y = h W^T with W = down_proj [C, F] = [" + std::to_string(C) + ", " + std::to_string(F) +
                   "], split by input columns.\n"
                   "Each rank holds only its F/tp columns of h (in the MLP they come straight out of the\n"
                   "column-parallel layer before it):");
  tp.reset_counts();
  const Tensor& y = row.forward(h_r);
  ctx.say_ranks("holds W_r " + shape_of(w.value) + " (columns " + std::to_string(r * F / n) + ".." +
                std::to_string((r + 1) * F / n - 1) + "), h_r " + shape_of(h_r) + " -> partial h_r W_r^T " +
                shape_of(y) + ", all-reduced to y");
  record(ctx, tp.counts(), n, "step2 row forward", "all_reduce", row_forward_cost(N, C));

  Tensor y_ref = ctx.ops.empty({N, C}), dh_ref = ctx.ops.empty({N, F}), dw_ref = ctx.ops.zeros({C, F});
  nn::linear_forward(ctx.ops, y_ref, h, full.value);
  nn::linear_backward(ctx.ops, dh_ref, dw_ref, dy, h, full.value);
  ctx.narrator.say("The sum of the partials equals the serial y up to the order of the additions (the all-reduce\n"
                   "adds tp partial sums; the serial matmul adds all F products in its own order).");
  ctx.check(compare("row forward: y (all-reduced) == serial y", y, y_ref, 1e-5));

  tp.reset_counts();
  const Tensor& dh = row.backward(dy);
  record(ctx, tp.counts(), n, "step2 row backward", "all_reduce", row_backward_cost());
  ctx.say_ranks("dh_r = dy W_r " + shape_of(dh) + ", dW_r = dy^T h_r " + shape_of(w.grad) + ": no communication");
  ctx.check(check_shard("row backward: dh_r == its columns of serial dh", dh, dh_ref, Split::cols, r, n, 1e-6));
  ctx.check(check_shard("row backward: dW_r == its columns of serial dW", w.grad, dw_ref, Split::cols, r, n, 1e-6));
}

}  // namespace fivefold::ch03
