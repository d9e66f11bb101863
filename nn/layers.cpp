// SPDX-License-Identifier: MIT
// The simple layers: linear, Embedding, RMSNorm, SwiGLU MLP, LM head + cross-entropy.
#include "nn/layers.hpp"

#include "common/check.hpp"

namespace fivefold::nn {

Shape with_last(const Shape& s, std::int64_t n) {
  Shape out = s;
  out.back() = n;
  return out;
}

void ensure(Ops& ops, Tensor& t, const Shape& shape, DType dtype) {
  if (!t.defined() || t.shape() != shape || t.dtype() != dtype || t.device() != ops.device())
    t = ops.empty(shape, dtype);
}

void linear_forward(Ops& ops, Tensor& y, const Tensor& x, const Tensor& w) {
  ops.matmul(y, x, w, false, true);  // TUTORIAL: y = x W^T with W stored [out, in]
}

void linear_backward(Ops& ops, Tensor& dx, Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                     bool accumulate_dx) {
  if (dx.defined()) ops.matmul(dx, dy, w, false, false, 1.0f, accumulate_dx ? 1.0f : 0.0f);  // dx = dy W
  ops.matmul(dw, dy, x, true, false, 1.0f, 1.0f);                                            // dW += dy^T x
}

const Tensor& Embedding::forward(const Tensor& tokens) {
  tokens_ = tokens;
  ensure(*ops_, y_, {tokens.dim(0), tokens.dim(1), w_.dim(1)});  // [B, T, C]
  ops_->gather_rows(y_, w_, tokens, Tensor());
  return y_;
}

void Embedding::backward(const Tensor& dx) { ops_->scatter_add_rows(dw_, dx, tokens_, Tensor()); }

const Tensor& RmsNorm::forward(const Tensor& x) {
  x_ = x;
  ensure(*ops_, y_, x.shape());
  ensure(*ops_, rstd_, {x.numel() / x.dim(-1)});
  ops_->rmsnorm_forward(y_, rstd_, x, w_, eps_);
  return y_;
}

const Tensor& RmsNorm::backward(const Tensor& dy) {
  ensure(*ops_, dx_, x_.shape());
  ops_->rmsnorm_backward(dx_, dw_, dy, x_, w_, rstd_);
  return dx_;
}

SwiGluWeights swiglu_weights(ParamRegistry& reg, const std::string& prefix) {
  Param& g = reg.get(prefix + ".gate_proj.weight");
  Param& u = reg.get(prefix + ".up_proj.weight");
  Param& d = reg.get(prefix + ".down_proj.weight");
  return {g.value, u.value, d.value, g.grad, u.grad, d.grad};
}

const Tensor& SwiGluMlp::forward(const Tensor& x) {
  const std::int64_t F = w_.gate.dim(0);
  x_ = x;
  ensure(*ops_, g_, with_last(x.shape(), F));  // [N, F]
  ensure(*ops_, u_, g_.shape());
  ensure(*ops_, h_, g_.shape());
  ensure(*ops_, y_, x.shape());                // [N, C]
  linear_forward(*ops_, g_, x, w_.gate);
  linear_forward(*ops_, u_, x, w_.up);
  ops_->swiglu_forward(h_, g_, u_);            // h = silu(g) * u
  linear_forward(*ops_, y_, h_, w_.down);
  return y_;
}

const Tensor& SwiGluMlp::backward(const Tensor& dy) {
  ensure(*ops_, dh_, h_.shape());
  ensure(*ops_, dg_, h_.shape());
  ensure(*ops_, du_, h_.shape());
  ensure(*ops_, dx_, x_.shape());
  linear_backward(*ops_, dh_, w_.d_down, dy, h_, w_.down);
  ops_->swiglu_backward(dg_, du_, dh_, g_, u_);
  linear_backward(*ops_, dx_, w_.d_gate, dg_, x_, w_.gate);
  linear_backward(*ops_, dx_, w_.d_up, du_, x_, w_.up, /*accumulate_dx=*/true);
  return dx_;
}

const Tensor& LmHead::forward(const Tensor& h) {
  h_ = h;
  ensure(*ops_, logits_, with_last(h.shape(), w_.dim(0)));  // [B, T, V]
  linear_forward(*ops_, logits_, h, w_);
  return logits_;
}

double LmHead::loss(const Tensor& targets) {
  const std::int64_t n = logits_.numel() / logits_.dim(-1);
  FIVEFOLD_CHECK(targets.numel() == n, "LmHead::loss: targets ", targets.str(), " need one per logits row (", n,
                 ")");
  ensure(*ops_, rowloss_, {n});
  ensure(*ops_, dlogits_, logits_.shape());
  // TUTORIAL: the loss is a mean over the tokens, so each row's gradient is scaled by 1/n.
  ops_->cross_entropy(rowloss_, dlogits_, logits_, targets, 1.0f / static_cast<float>(n));
  double sum = 0.0;
  for (float v : rowloss_.to_vector()) sum += v;
  return sum / static_cast<double>(n);
}

const Tensor& LmHead::backward() {
  ensure(*ops_, dh_, h_.shape());
  linear_backward(*ops_, dh_, dw_, dlogits_, h_, w_);
  return dh_;
}

}  // namespace fivefold::nn
