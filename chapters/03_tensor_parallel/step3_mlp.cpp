// SPDX-License-Identifier: MIT
// Step 3: the SwiGLU MLP y = down(silu(gate(m)) * up(m)) under TP. gate and up are column-parallel
// (rank r computes its F/tp columns of g and u), SwiGLU is elementwise (done on those columns),
// and down is row-parallel: it wants exactly those F/tp columns as input. So nothing is gathered
// in between; the only communication is the conjugate pair
//   f (before gate/up): forward identity,   backward all-reduce of dm [N, C]
//   g (after down):     forward all-reduce of y [N, C],   backward identity
// one all-reduce in the forward and one in the backward per MLP.
// Run: mpirun -np 4 build/cpu/bin/ch03_tensor_parallel --step 3
#include "chapters/03_tensor_parallel/steps.hpp"

namespace fivefold::ch03 {

void step3_mlp(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  Communicator& tp = tp_group(ctx, lab);
  const int n = tp.size(), r = tp.rank();
  const std::int64_t N = static_cast<std::int64_t>(cfg.batch) * cfg.seq, C = cfg.dim;
  const std::string p = "layers.0.mlp.";

  nn::Model serial(ctx.ops, cfg);
  nn::SwiGluMlp ref(ctx.ops, nn::swiglu_weights(serial.params(), "layers.0.mlp"));
  TpParams shards(ctx.ops, cfg, r, n);
  nn::Param &gate = shards.get(p + "gate_proj.weight"), &up = shards.get(p + "up_proj.weight"),
            &down = shards.get(p + "down_proj.weight");
  TpMlp mlp(ctx.ops, tp, gate, up, down);

  const Tensor m = random_tensor(ctx.ops, lab.o, "step3.m", {cfg.batch, cfg.seq, C});    // normed input
  const Tensor dy = random_tensor(ctx.ops, lab.o, "step3.dy", {cfg.batch, cfg.seq, C});  // upstream gradient
  ctx.narrator.say("     m ──f──┬─ gate (column) ─ g_r ─┐\n"
                   "            └─ up   (column) ─ u_r ─┴─ silu(g_r)*u_r = h_r ─ down (row) ─ partial ──g── y\n"
                   "What each rank holds:");
  ctx.say_ranks("gate_r, up_r " + shape_of(gate.value) + ", down_r " + shape_of(down.value) + "; m " + shape_of(m) +
                " -> g_r, u_r, h_r [" + std::to_string(N) + ", " + std::to_string(gate.value.dim(0)) + "] -> y " +
                shape_of(m));

  tp.reset_counts();
  const Tensor& y = mlp.forward(m);
  record(ctx, tp.counts(), n, "step3 mlp forward", "all_reduce", block_cost(N, C));
  const Tensor& y_ref = ref.forward(m);
  ctx.check(compare("mlp forward: y == serial", y, y_ref, 1e-5));

  tp.reset_counts();
  const Tensor& dm = mlp.backward(dy);
  record(ctx, tp.counts(), n, "step3 mlp backward", "all_reduce", block_cost(N, C));
  const Tensor& dm_ref = ref.backward(dy);
  ctx.narrator.say("Backward: down's backward is local (dh_r), SwiGLU's too (dg_r, du_r); gate and up each give a\n"
                   "partial dm from their F/tp rows, added locally, then ONE all-reduce (f) for both.");
  ctx.check(compare("mlp backward: dm == serial", dm, dm_ref, 1e-5));
  nn::Param &sg = serial.params().get(p + "gate_proj.weight"), &su = serial.params().get(p + "up_proj.weight"),
            &sd = serial.params().get(p + "down_proj.weight");
  CheckResult g = check_shard("mlp backward: gate/up/down shard grads == serial slices", gate.grad, sg.grad,
                              Split::rows, r, n, 1e-5);
  merge(g, check_shard("", up.grad, su.grad, Split::rows, r, n, 1e-5));
  merge(g, check_shard("", down.grad, sd.grad, Split::cols, r, n, 1e-5));
  ctx.check(g);

  const double S = 4.0 * N * C;
  ctx.narrator.say("Per MLP and step: 2 all-reduces of [N, C] = " + human_bytes(S) + " each; a ring sends 2(tp-1)/tp*S = " +
                   human_bytes(ring_wire_bytes(S, n)) + " per rank per all-reduce. Compare the weights: 3FC floats = " +
                   human_bytes(12.0 * cfg.ffn * C) + ", of which each rank stores 1/tp.");
}

}  // namespace fivefold::ch03
