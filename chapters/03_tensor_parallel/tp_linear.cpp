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

const Tensor& ColumnParallelLinear::forward(const Tensor& x) {
  x_ = x;
  nn::ensure(*ops_, y_, with_last(x.shape(), w_.dim(0)));  // [N, out/tp]
  nn::linear_forward(*ops_, y_, x, w_);                    // TUTORIAL: y_r = x W_r^T, no communication
  return y_;
}

void ColumnParallelLinear::backward_partial(Tensor& dx, const Tensor& dy, bool accumulate) {
  nn::linear_backward(*ops_, dx, dw_, dy, x_, w_, accumulate);  // dx += dy_r W_r (partial); dW_r += dy_r^T x
}

const Tensor& ColumnParallelLinear::backward(const Tensor& dy) {
  nn::ensure(*ops_, dx_, x_.shape());  // [N, in]
  backward_partial(dx_, dy);
  f_backward(*tp_, dx_);  // TUTORIAL: every rank's output slice depended on all of x: sum the partials
  return dx_;
}

const Tensor& RowParallelLinear::forward(const Tensor& x) {
  x_ = x;
  nn::ensure(*ops_, y_, with_last(x.shape(), w_.dim(0)));  // [N, out]
  nn::linear_forward(*ops_, y_, x, w_);                    // partial: x_r W_r^T over this rank's in/tp inputs
  g_forward(*tp_, y_);                                     // TUTORIAL: y = sum_r x_r W_r^T
  return y_;
}

const Tensor& RowParallelLinear::backward(const Tensor& dy) {
  nn::ensure(*ops_, dx_, x_.shape());                // [N, in/tp]
  nn::linear_backward(*ops_, dx_, dw_, dy, x_, w_);  // TUTORIAL: dx_r = dy W_r needs only this rank's W_r
  return dx_;
}

const Tensor& TpMlp::forward(const Tensor& m) {
  // f: m is replicated, nothing to do in the forward.
  const Tensor& g = gate_.forward(m);  // [N, F/tp]
  const Tensor& u = up_.forward(m);    // [N, F/tp]
  nn::ensure(*ops_, h_, g.shape());
  ops_->swiglu_forward(h_, g, u);      // TUTORIAL: elementwise on this rank's F/tp columns: no all-gather
  return down_.forward(h_);            // [N, C], all-reduced (g)
}

const Tensor& TpMlp::backward(const Tensor& dy) {
  const Tensor& dh = down_.backward(dy);  // [N, F/tp], no communication
  nn::ensure(*ops_, dg_, dh.shape());
  nn::ensure(*ops_, du_, dh.shape());
  ops_->swiglu_backward(dg_, du_, dh, gate_.output(), up_.output());  // this rank's saved g, u
  nn::ensure(*ops_, dm_, with_last(dh.shape(), dy.dim(-1)));  // [N, C]
  gate_.backward_partial(dm_, dg_);
  up_.backward_partial(dm_, du_, /*accumulate=*/true);
  f_backward(*tp_, dm_);  // TUTORIAL: one all-reduce for both column-parallel layers (they share m)
  return dm_;
}

}  // namespace fivefold::ch03
