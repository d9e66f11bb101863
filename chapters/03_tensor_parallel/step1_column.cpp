// SPDX-License-Identifier: MIT
// Step 1: the column-parallel linear, on layer 0's gate_proj W [F, C]. Rank r holds the rows
// r*F/tp .. (r+1)*F/tp-1 of W (drawn on their own, equal to that slice of the serial weight) and
// computes y_r = x W_r^T: its own F/tp output columns, with no communication. The backward needs
// all of W to form dx = dy W = sum_r dy_r W_r, so it ends with one all-reduce of [N, C].
// Run: mpirun -np 2 build/cpu/bin/ch03_tensor_parallel --step 1
#include "chapters/03_tensor_parallel/steps.hpp"
#include "chapters/03_tensor_parallel/tp_gather.hpp"

namespace fivefold::ch03 {

void step1_column(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  Communicator& tp = tp_group(ctx, lab);
  const int n = tp.size(), r = tp.rank();
  const std::int64_t N = static_cast<std::int64_t>(cfg.batch) * cfg.seq, C = cfg.dim, F = cfg.ffn;
  const std::string name = "layers.0.mlp.gate_proj.weight";

  // The serial reference: the whole model on every rank; we use its gate_proj.
  nn::Model serial(ctx.ops, cfg);
  nn::Param& full = serial.params().get(name);  // [F, C]
  TpParams shards(ctx.ops, cfg, r, n);
  nn::Param& w = shards.get(name);  // [F/tp, C]
  ctx.check(check_shard("gate_proj shard == its rows of the serial weight (exact)", w.value, full.value, Split::rows, r,
                        n, 0.0));
  ColumnParallelLinear col(ctx.ops, tp, w);

  const Tensor x = random_tensor(ctx.ops, lab.o, "step1.x", {N, C});   // replicated input [N, C]
  const Tensor dy = random_tensor(ctx.ops, lab.o, "step1.dy", {N, F});  // upstream gradient [N, F]
  ctx.narrator.say("y = x W^T with W = gate_proj [F, C] = [" + std::to_string(F) + ", " + std::to_string(C) +
                   "], x [N, C] with N = B*T = " + std::to_string(N) + ", split over tp = " + std::to_string(n) +
                   " ranks by output rows:");
  tp.reset_counts();
  const Tensor& y = col.forward(x);
  ctx.say_ranks("holds W_r " + shape_of(w.value) + " (rows " + std::to_string(r * F / n) + ".." +
                std::to_string((r + 1) * F / n - 1) + "), x " + shape_of(x) + " (all of it) -> y_r = x W_r^T " +
                shape_of(y));
  record(ctx, tp.counts(), n, "step1 column forward", "all_reduce", column_forward_cost());

  // Serial: y = x W^T, dx = dy W, dW = dy^T x.
  Tensor y_ref = ctx.ops.empty({N, F}), dx_ref = ctx.ops.empty({N, C}), dw_ref = ctx.ops.zeros({F, C});
  nn::linear_forward(ctx.ops, y_ref, x, full.value);
  nn::linear_backward(ctx.ops, dx_ref, dw_ref, dy, x, full.value);
  ctx.check(check_shard("column forward: y_r == its columns of serial y", y, y_ref, Split::cols, r, n, 1e-6));

  ctx.narrator.say("Backward: rank r receives dy_r, its own F/tp columns of dy, and computes dW_r = dy_r^T x (its\n"
                   "rows of dW) and a PARTIAL dx = dy_r W_r. The true dx = dy W sums over all F outputs, so the\n"
                   "partials are summed with one all-reduce of [N, C] (the f operator's backward).");
  const Tensor dy_r = ctx.ops.upload(block_of(dy, Split::cols, r, n));  // [N, F/tp]
  tp.reset_counts();
  const Tensor& dx = col.backward(dy_r);
  record(ctx, tp.counts(), n, "step1 column backward", "all_reduce", column_backward_cost(N, C));
  ctx.check(compare("column backward: dx (all-reduced) == serial dx", dx, dx_ref, 1e-5));
  ctx.check(check_shard("column backward: dW_r == its rows of serial dW", w.grad, dw_ref, Split::rows, r, n, 1e-6));

  // To see the whole y every rank would need an all-gather; the next layer (row-parallel) does not.
  const Tensor y_full = gather_full(tp, ctx.ops, y, Split::cols);
  ctx.narrator.say("Gathering the y_r (for this check only, uncounted) gives y " + shape_str(y_full.shape()) +
                   "; the MLP never does this (step 3).");
  ctx.check(compare("column forward: gathered y == serial y", y_full, y_ref, 1e-6));
}

}  // namespace fivefold::ch03
