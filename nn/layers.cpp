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

void linear_backward_input(Ops& ops, Tensor& dx, const Tensor& dy, const Tensor& w, bool accumulate) {
  ops.matmul(dx, dy, w, false, false, 1.0f, accumulate ? 1.0f : 0.0f);  // dx = dy W
}

void linear_backward_weight(Ops& ops, Tensor& dw, const Tensor& dy, const Tensor& x) {
  ops.matmul(dw, dy, x, true, false, 1.0f, 1.0f);  // dW += dy^T x
}

void linear_backward(Ops& ops, Tensor& dx, Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                     bool accumulate_dx) {
  if (dx.defined()) linear_backward_input(ops, dx, dy, w, accumulate_dx);
  linear_backward_weight(ops, dw, dy, x);
}

const Tensor& Embedding::forward(Acts& a, const Pass& pass) {
  Saved& s = static_cast<Saved&>(a);
  s.tokens = pass.tokens;
  ensure(*ops_, s.y, {s.tokens.dim(0), s.tokens.dim(1), w_.dim(1)});  // [B, T, C]
  ops_->gather_rows(s.y, w_, s.tokens, Tensor());
  return s.y;
}

const Tensor& Embedding::forward(const Tensor& tokens) {
  Pass p;
  p.tokens = tokens;
  return forward(own_, p);
}

void Embedding::backward_weight(Acts& a, const Tensor& dx) {
  ops_->scatter_add_rows(dw_, dx, static_cast<Saved&>(a).tokens, Tensor());
}

const Tensor& RmsNorm::forward(Saved& s, const Tensor& x) {
  s.x = x;
  ensure(*ops_, s.y, x.shape());
  ensure(*ops_, s.rstd, {x.numel() / x.dim(-1)});
  ops_->rmsnorm_forward(s.y, s.rstd, x, w_, eps_);
  return s.y;
}

const Tensor& RmsNorm::backward(Saved& s, const Tensor& dy) {
  ensure(*ops_, s.dx, s.x.shape());
  ops_->rmsnorm_backward(s.dx, dw_, dy, s.x, w_, s.rstd);
  return s.dx;
}

SwiGluWeights swiglu_weights(ParamRegistry& reg, const std::string& prefix) {
  Param& g = reg.get(prefix + ".gate_proj.weight");
  Param& u = reg.get(prefix + ".up_proj.weight");
  Param& d = reg.get(prefix + ".down_proj.weight");
  return {g.value, u.value, d.value, g.grad, u.grad, d.grad};
}

const Tensor& SwiGluMlp::forward(Acts& a, const Tensor& x, const Pass&, KvCache*) {
  Saved& s = static_cast<Saved&>(a);
  const std::int64_t F = w_.gate.dim(0);
  s.x = x;
  ensure(*ops_, s.g, with_last(x.shape(), F));  // [N, F]
  ensure(*ops_, s.u, s.g.shape());
  ensure(*ops_, s.h, s.g.shape());
  ensure(*ops_, s.y, x.shape());                // [N, C]
  linear_forward(*ops_, s.g, x, w_.gate);
  linear_forward(*ops_, s.u, x, w_.up);
  ops_->swiglu_forward(s.h, s.g, s.u);          // h = silu(g) * u
  linear_forward(*ops_, s.y, s.h, w_.down);
  return s.y;
}

const Tensor& SwiGluMlp::backward_input(Acts& a, const Tensor& dy) {
  Saved& s = static_cast<Saved&>(a);
  s.dy = dy;
  ensure(*ops_, s.dh, s.h.shape());
  ensure(*ops_, s.dg, s.h.shape());
  ensure(*ops_, s.du, s.h.shape());
  ensure(*ops_, s.dx, s.x.shape());
  linear_backward_input(*ops_, s.dh, dy, w_.down);
  ops_->swiglu_backward(s.dg, s.du, s.dh, s.g, s.u);
  linear_backward_input(*ops_, s.dx, s.dg, w_.gate);
  linear_backward_input(*ops_, s.dx, s.du, w_.up, /*accumulate=*/true);
  return s.dx;
}

void SwiGluMlp::backward_weight(Acts& a) {
  Saved& s = static_cast<Saved&>(a);
  linear_backward_weight(*ops_, w_.d_down, s.dy, s.h);
  linear_backward_weight(*ops_, w_.d_gate, s.dg, s.x);
  linear_backward_weight(*ops_, w_.d_up, s.du, s.x);
}

const Tensor& SwiGluMlp::backward(const Tensor& dy) {
  const Tensor& dx = backward_input(own_, dy);
  backward_weight(own_);
  return dx;
}

const Tensor& LmHead::forward(Acts& a, const Tensor& h) {
  Saved& s = static_cast<Saved&>(a);
  s.h = h;
  ensure(*ops_, s.logits, with_last(h.shape(), w_.dim(0)));  // [B, T, V]
  linear_forward(*ops_, s.logits, h, w_);
  return s.logits;
}

double LmHead::loss(Acts& a, const Pass& pass) {
  Saved& s = static_cast<Saved&>(a);
  const std::int64_t n = s.logits.numel() / s.logits.dim(-1);
  FIVEFOLD_CHECK(pass.targets.numel() == n, "LmHead::loss: targets ", pass.targets.str(),
                 " need one per logits row (", n, ")");
  ensure(*ops_, s.rowloss, {n});
  ensure(*ops_, s.dlogits, s.logits.shape());
  // TUTORIAL: the loss is a mean over the tokens, so each row's gradient is scaled by 1/n (or by
  // 1/(global B*T) when this pass is one piece of a larger step).
  const float scale = pass.loss_scale > 0 ? static_cast<float>(pass.loss_scale) : 1.0f / static_cast<float>(n);
  ops_->cross_entropy(s.rowloss, s.dlogits, s.logits, pass.targets, scale);
  double sum = 0.0;
  for (float v : s.rowloss.to_vector()) sum += v;
  return sum / static_cast<double>(n);
}

double LmHead::loss(const Tensor& targets) {
  Pass p;
  p.targets = targets;
  return loss(own_, p);
}

const Tensor& LmHead::backward_input(Acts& a) {
  Saved& s = static_cast<Saved&>(a);
  ensure(*ops_, s.dh, s.h.shape());
  linear_backward_input(*ops_, s.dh, s.dlogits, w_);
  return s.dh;
}

void LmHead::backward_weight(Acts& a) {
  Saved& s = static_cast<Saved&>(a);
  linear_backward_weight(*ops_, dw_, s.dlogits, s.h);
}

const Tensor& LmHead::backward() {
  const Tensor& dh = backward_input(own_);
  backward_weight(own_);
  return dh;
}

std::vector<std::int32_t> LmHead::argmax(const Tensor& logits, std::int64_t t) { return argmax_at(logits, t); }

std::vector<std::int32_t> argmax_at(const Tensor& logits, std::int64_t t) {
  const std::int64_t B = logits.dim(0), T = logits.dim(1), V = logits.dim(2);
  const std::vector<float> h = logits.to_vector();
  std::vector<std::int32_t> out(B);
  for (std::int64_t b = 0; b < B; ++b) {
    const float* row = &h[(b * T + t) * V];
    std::int64_t best = 0;
    for (std::int64_t v = 1; v < V; ++v)
      if (row[v] > row[best]) best = v;
    out[b] = static_cast<std::int32_t>(best);
  }
  return out;
}

}  // namespace fivefold::nn
