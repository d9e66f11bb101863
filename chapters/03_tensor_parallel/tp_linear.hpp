// SPDX-License-Identifier: MIT
/// @file tp_linear.hpp
/// @brief Megatron's two parallel linears, the conjugate operators f and g that glue them,
/// and the tensor-parallel SwiGLU MLP built from them.
///
/// y = x W^T with W [out, in] on a TP group of tp ranks:
/// - column-parallel: W split by OUTPUT rows; rank r computes y_r = x W_r^T, its own out/tp
///   columns of y. Forward: no communication. Backward: dx = sum_r dy_r W_r (all-reduce).
/// - row-parallel: W split by INPUT columns; rank r holds the matching slice x_r of the input and
///   computes a partial y^(r) = x_r W_r^T of the FULL output; y = sum_r y^(r) (all-reduce).
///   Backward: dx_r = dy W_r, no communication.
/// A column-parallel layer leaves its output split exactly as a row-parallel layer wants its
/// input, so gate/up (column) then down (row) need no all-gather in between, and an elementwise
/// op (SwiGLU) on the split activation is just done locally.
///
/// Every layer takes the Communicator of ITS TP group (not the world), so chapter 07 reuses it
/// with tp sub-groups of a larger job. Leaves out: sequence parallelism (chapter 05), fusing
/// gate and up into one matmul, overlapping the all-reduce with compute.
#pragma once

#include "backends/communicator.hpp"
#include "backends/ops.hpp"
#include "nn/params.hpp"

namespace fivefold::ch03 {

/// f, "copy to the tensor-parallel region": forward is the identity (every rank already holds
/// the replicated input, nothing to call); backward sums the ranks' partial input gradients.
/// This is f's backward: one all-reduce of @p dx in @p tp.
void f_backward(Communicator& tp, Tensor& dx);
/// g, "reduce from the tensor-parallel region": forward sums the ranks' partial outputs (one
/// all-reduce of @p y in @p tp); backward is the identity (the full gradient is replicated).
void g_forward(Communicator& tp, Tensor& y);

/// Column-parallel linear: this rank's shard W_r [out/tp, in] of W [out, in].
class ColumnParallelLinear {
 public:
  /// Over the shard @p w (value and gradient handles).
  ColumnParallelLinear(Ops& ops, Communicator& tp, nn::Param& w) : ops_(&ops), tp_(&tp), w_(w.value), dw_(w.grad) {}
  /// x [N, in] (replicated) -> y_r [N, out/tp]. No communication. Saves x.
  const Tensor& forward(const Tensor& x);
  /// dy_r [N, out/tp] -> this rank's PARTIAL input gradient dy_r W_r [N, in], written into
  /// @p dx (or added when @p accumulate); dW_r += dy_r^T x. No communication: the caller sums
  /// the partials with f_backward once (two layers reading the same x share one all-reduce).
  void backward_partial(Tensor& dx, const Tensor& dy, bool accumulate = false);
  /// backward_partial + f_backward: the full dx [N, in] on every rank (one all-reduce).
  const Tensor& backward(const Tensor& dy);
  /// y_r of the last forward.
  const Tensor& output() const { return y_; }

 private:
  Ops* ops_;
  Communicator* tp_;
  Tensor w_, dw_, x_, y_, dx_;
};

/// Row-parallel linear: this rank's shard W_r [out, in/tp] of W [out, in].
class RowParallelLinear {
 public:
  /// Over the shard @p w.
  RowParallelLinear(Ops& ops, Communicator& tp, nn::Param& w) : ops_(&ops), tp_(&tp), w_(w.value), dw_(w.grad) {}
  /// x_r [N, in/tp] -> y [N, out], the full output on every rank (partial x_r W_r^T, then g:
  /// one all-reduce). Saves x_r.
  const Tensor& forward(const Tensor& x);
  /// dy [N, out] (replicated) -> dx_r [N, in/tp]; dW_r += dy^T x_r. No communication.
  const Tensor& backward(const Tensor& dy);

 private:
  Ops* ops_;
  Communicator* tp_;
  Tensor w_, dw_, x_, y_, dx_;
};

/// The SwiGLU MLP under TP: gate, up column-parallel ([F/tp, C] shards), down row-parallel
/// ([C, F/tp]). One all-reduce in the forward (g after down), one in the backward (f before gate/up).
class TpMlp {
 public:
  /// Shards "<prefix>.gate_proj.weight", ... (prefix e.g. "layers.0.mlp").
  TpMlp(Ops& ops, Communicator& tp, nn::Param& gate, nn::Param& up, nn::Param& down)
      : ops_(&ops), tp_(&tp), gate_(ops, tp, gate), up_(ops, tp, up), down_(ops, tp, down) {}
  /// m [N, C] (replicated) -> y [N, C] (replicated).
  const Tensor& forward(const Tensor& m);
  /// dy [N, C] (replicated) -> dm [N, C] (replicated); shard gradients accumulate.
  const Tensor& backward(const Tensor& dy);

 private:
  Ops* ops_;
  Communicator* tp_;
  ColumnParallelLinear gate_, up_;
  RowParallelLinear down_;
  Tensor g_, u_, h_, dg_, du_, dm_;
};

}  // namespace fivefold::ch03
