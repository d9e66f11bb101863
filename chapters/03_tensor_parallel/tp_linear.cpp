// SPDX-License-Identifier: MIT
// Column- and row-parallel linears, the f/g operators, and the TP SwiGLU MLP.
#include "chapters/03_tensor_parallel/tp_linear.hpp"

#include "nn/layers.hpp"
#include "common/trace.hpp"

namespace fivefold::ch03 {

using nn::with_last;

void f_backward(Communicator& tp, Tensor& dx) {
  TraceSpan span("all_reduce (f backward)", "comm");
  tp.all_reduce(dx);  // TUTORIAL: f: identity in the forward, sum of the partial gradients in the backward
}

void g_forward(Communicator& tp, Tensor& y) {
  TraceSpan span("all_reduce (g forward)", "comm");
  tp.all_reduce(y);  // TUTORIAL: g: sum of the partial outputs in the forward, identity in the backward
}

const Tensor& ColumnParallelLinear::forward(LinearSaved& s, const Tensor& x) {
  s.x = x;
  nn::ensure(*ops_, s.y, with_last(x.shape(), w_.dim(0)));  // [N, out/tp]
  nn::linear_forward(*ops_, s.y, x, w_);                    // TUTORIAL: y_r = x W_r^T, no communication
  return s.y;
}

void ColumnParallelLinear::backward_input_partial(LinearSaved& s, Tensor& dx, const Tensor& dy, bool accumulate) {
  s.dy = dy;
  nn::linear_backward_input(*ops_, dx, dy, w_, accumulate);  // dx += dy_r W_r (partial)
}

void ColumnParallelLinear::backward_weight(LinearSaved& s) {
  nn::linear_backward_weight(*ops_, dw_, s.dy, s.x);  // dW_r += dy_r^T x
}

void ColumnParallelLinear::backward_partial(Tensor& dx, const Tensor& dy, bool accumulate) {
  backward_input_partial(own_, dx, dy, accumulate);
  backward_weight(own_);
}

const Tensor& ColumnParallelLinear::backward(const Tensor& dy) {
  nn::ensure(*ops_, own_.dx, own_.x.shape());  // [N, in]
  backward_partial(own_.dx, dy);
  f_backward(*tp_, own_.dx);  // TUTORIAL: every rank's output slice depended on all of x: sum the partials
  return own_.dx;
}

const Tensor& RowParallelLinear::forward(LinearSaved& s, const Tensor& x) {
  s.x = x;
  nn::ensure(*ops_, s.y, with_last(x.shape(), w_.dim(0)));  // [N, out]
  nn::linear_forward(*ops_, s.y, x, w_);                    // partial: x_r W_r^T over this rank's in/tp inputs
  g_forward(*tp_, s.y);                                     // TUTORIAL: y = sum_r x_r W_r^T
  return s.y;
}

const Tensor& RowParallelLinear::backward_input(LinearSaved& s, const Tensor& dy) {
  s.dy = dy;
  nn::ensure(*ops_, s.dx, s.x.shape());             // [N, in/tp]
  nn::linear_backward_input(*ops_, s.dx, dy, w_);  // TUTORIAL: dx_r = dy W_r needs only this rank's W_r
  return s.dx;
}

void RowParallelLinear::backward_weight(LinearSaved& s) {
  nn::linear_backward_weight(*ops_, dw_, s.dy, s.x);  // dW_r += dy^T x_r
}

const Tensor& RowParallelLinear::backward(const Tensor& dy) {
  const Tensor& dx = backward_input(own_, dy);
  backward_weight(own_);
  return dx;
}

const Tensor& TpMlp::forward(nn::Acts& a, const Tensor& m, const nn::Pass&, nn::KvCache*) {
  Saved& s = static_cast<Saved&>(a);
  // f: m is replicated, nothing to do in the forward.
  const Tensor& g = gate_.forward(s.gate, m);  // [N, F/tp]
  const Tensor& u = up_.forward(s.up, m);      // [N, F/tp]
  nn::ensure(*ops_, s.h, g.shape());
  ops_->swiglu_forward(s.h, g, u);  // TUTORIAL: elementwise on this rank's F/tp columns: no all-gather
  return down_.forward(s.down, s.h);  // [N, C], all-reduced (g)
}

const Tensor& TpMlp::backward_input(nn::Acts& a, const Tensor& dy) {
  Saved& s = static_cast<Saved&>(a);
  const Tensor& dh = down_.backward_input(s.down, dy);  // [N, F/tp], no communication
  nn::ensure(*ops_, s.dg, dh.shape());
  nn::ensure(*ops_, s.du, dh.shape());
  ops_->swiglu_backward(s.dg, s.du, dh, s.gate.y, s.up.y);  // this rank's saved g, u
  nn::ensure(*ops_, s.dm, with_last(dh.shape(), dy.dim(-1)));  // [N, C]
  gate_.backward_input_partial(s.gate, s.dm, s.dg);
  up_.backward_input_partial(s.up, s.dm, s.du, /*accumulate=*/true);
  f_backward(*tp_, s.dm);  // TUTORIAL: one all-reduce for both column-parallel layers (they share m)
  return s.dm;
}

void TpMlp::backward_weight(nn::Acts& a) {
  Saved& s = static_cast<Saved&>(a);
  down_.backward_weight(s.down);
  gate_.backward_weight(s.gate);
  up_.backward_weight(s.up);
}

const Tensor& TpMlp::backward(const Tensor& dy) {
  const Tensor& dm = backward_input(own_, dy);
  backward_weight(own_);
  return dm;
}

}  // namespace fivefold::ch03
