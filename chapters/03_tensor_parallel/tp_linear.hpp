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
#include "nn/parts.hpp"

namespace fivefold::ch03 {

/// f, "copy to the tensor-parallel region": forward is the identity (every rank already holds
/// the replicated input, nothing to call); backward sums the ranks' partial input gradients.
/// This is f's backward: one all-reduce of @p dx in @p tp.
void f_backward(Communicator& tp, Tensor& dx);
/// g, "reduce from the tensor-parallel region": forward sums the ranks' partial outputs (one
/// all-reduce of @p y in @p tp); backward is the identity (the full gradient is replicated).
void g_forward(Communicator& tp, Tensor& y);

/// What a parallel linear keeps for its backward (one per pass in flight).
struct LinearSaved {
  Tensor x;   ///< the input (a handle)
  Tensor y;   ///< the output
  Tensor dy;  ///< the output gradient of the last backward (a handle, kept for W)
  Tensor dx;  ///< the input gradient buffer
};

/// Column-parallel linear: this rank's shard W_r [out/tp, in] of W [out, in].
class ColumnParallelLinear {
 public:
  /// Over the shard @p w (value and gradient handles).
  ColumnParallelLinear(Ops& ops, Communicator& tp, nn::Param& w) : ops_(&ops), tp_(&tp), w_(w.value), dw_(w.grad) {}
  /// x [N, in] (replicated) -> y_r [N, out/tp] (in @p s). No communication. Saves x.
  const Tensor& forward(LinearSaved& s, const Tensor& x);
  /// B without communication: this rank's PARTIAL input gradient dy_r W_r [N, in] written into
  /// @p dx (or added when @p accumulate); keeps dy_r for W. The caller sums the partials with
  /// f_backward once (two layers reading the same x share one all-reduce).
  void backward_input_partial(LinearSaved& s, Tensor& dx, const Tensor& dy, bool accumulate = false);
  /// W: dW_r += dy_r^T x. No communication.
  void backward_weight(LinearSaved& s);
  /// One pass in flight (the layer's own LinearSaved): x -> y_r.
  const Tensor& forward(const Tensor& x) { return forward(own_, x); }
  /// backward_input_partial + backward_weight of forward(x).
  void backward_partial(Tensor& dx, const Tensor& dy, bool accumulate = false);
  /// backward_partial + f_backward: the full dx [N, in] on every rank (one all-reduce).
  const Tensor& backward(const Tensor& dy);
  /// y_r of the last forward(x).
  const Tensor& output() const { return own_.y; }

 private:
  Ops* ops_;
  Communicator* tp_;
  Tensor w_, dw_;
  LinearSaved own_;
};

/// Row-parallel linear: this rank's shard W_r [out, in/tp] of W [out, in].
class RowParallelLinear {
 public:
  /// Over the shard @p w.
  RowParallelLinear(Ops& ops, Communicator& tp, nn::Param& w) : ops_(&ops), tp_(&tp), w_(w.value), dw_(w.grad) {}
  /// x_r [N, in/tp] -> y [N, out], the full output on every rank (partial x_r W_r^T, then g:
  /// one all-reduce). Saves x_r.
  const Tensor& forward(LinearSaved& s, const Tensor& x);
  /// B: dy [N, out] (replicated) -> dx_r [N, in/tp]. No communication.
  const Tensor& backward_input(LinearSaved& s, const Tensor& dy);
  /// W: dW_r += dy^T x_r. No communication.
  void backward_weight(LinearSaved& s);
  /// One pass in flight (the layer's own LinearSaved).
  const Tensor& forward(const Tensor& x) { return forward(own_, x); }
  /// B and W of forward(x): dy -> dx_r.
  const Tensor& backward(const Tensor& dy);

 private:
  Ops* ops_;
  Communicator* tp_;
  Tensor w_, dw_;
  LinearSaved own_;
};

/// The SwiGLU MLP under TP: gate, up column-parallel ([F/tp, C] shards), down row-parallel
/// ([C, F/tp]). One all-reduce in the forward (g after down), one in the backward (f before gate/up).
class TpMlp : public nn::Block {
 public:
  /// What one pass keeps.
  struct Saved : nn::Acts {
    LinearSaved gate;  ///< gate_proj (column-parallel)
    LinearSaved up;  ///< up_proj (column-parallel)
    LinearSaved down;  ///< down_proj (row-parallel)
    Tensor h;  ///< silu(g) * u [N, F/tp]
    Tensor dg;  ///< gradient of gate's output
    Tensor du;  ///< gradient of up's output
    Tensor dm;  ///< input gradient [N, C], all-reduced
  };
  /// Shards "<prefix>.gate_proj.weight", ... (prefix e.g. "layers.0.mlp").
  TpMlp(Ops& ops, Communicator& tp, nn::Param& gate, nn::Param& up, nn::Param& down)
      : ops_(&ops), tp_(&tp), gate_(ops, tp, gate), up_(ops, tp, up), down_(ops, tp, down) {}
  std::unique_ptr<nn::Acts> new_acts() const override { return std::make_unique<Saved>(); }
  /// m [N, C] (replicated) -> y [N, C] (replicated).
  const Tensor& forward(nn::Acts& a, const Tensor& m, const nn::Pass& pass, nn::KvCache* cache) override;
  /// B: dy [N, C] (replicated) -> dm [N, C] (replicated; one all-reduce).
  const Tensor& backward_input(nn::Acts& a, const Tensor& dy) override;
  /// W: the shard gradients accumulate.
  void backward_weight(nn::Acts& a) override;
  /// One pass in flight (the MLP's own Saved).
  const Tensor& forward(const Tensor& m) { return forward(own_, m, nn::Pass{}, nullptr); }
  /// B and W of forward(m).
  const Tensor& backward(const Tensor& dy);

 private:
  Ops* ops_;
  Communicator* tp_;
  ColumnParallelLinear gate_, up_;
  RowParallelLinear down_;
  Saved own_;
};

}  // namespace fivefold::ch03
