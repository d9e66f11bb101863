// SPDX-License-Identifier: MIT
// EigenOps, the model ops except attention: row gather/scatter, RMSNorm, RoPE, SwiGLU, softmax,
// cross-entropy and AdamW, as Eigen array expressions over row-major maps (one pass per row;
// no per-element virtual calls). Attention is in eigen_attention_ops.cpp.
#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Core>

#include "backends/cpu/eigen_ops.hpp"

namespace fivefold {

namespace {

using Arr = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Rows = Eigen::Map<Arr>;
using CRows = Eigen::Map<const Arr>;

void check_f32(const Tensor& t, const char* op) {
  FIVEFOLD_CHECK(t.defined() && t.dtype() == DType::f32 && t.device() == Device::host, op,
                 ": eigen ops need defined f32 host tensors, got ", t.str());
}

void check_i32(const Tensor& t, const char* op) {
  FIVEFOLD_CHECK(t.defined() && t.dtype() == DType::i32 && t.device() == Device::host, op,
                 ": expected an int32 host index tensor, got ", t.str());
}

std::int64_t cols_of(const Tensor& t) { return t.ndim() == 0 ? 1 : t.dim(-1); }

// t viewed as [numel / cols, cols] with cols = its last dimension (or @p cols when given).
Rows rows(Tensor& t, const char* op, std::int64_t cols = -1) {
  check_f32(t, op);
  if (cols < 0) cols = cols_of(t);
  FIVEFOLD_CHECK(cols > 0 && t.numel() % cols == 0, op, ": ", t.str(), " is not rows of ", cols);
  return Rows(t.data<float>(), t.numel() / cols, cols);
}

CRows crows(const Tensor& t, const char* op, std::int64_t cols = -1) {
  check_f32(t, op);
  if (cols < 0) cols = cols_of(t);
  FIVEFOLD_CHECK(cols > 0 && t.numel() % cols == 0, op, ": ", t.str(), " is not rows of ", cols);
  return CRows(t.data<float>(), t.numel() / cols, cols);
}

void same_size(const Tensor& a, const Tensor& b, const char* op) {
  FIVEFOLD_CHECK(a.numel() == b.numel(), op, ": ", a.str(), " and ", b.str(), " differ in size");
}

Eigen::Map<Eigen::ArrayXf> flat(Tensor& t, const char* op) {
  check_f32(t, op);
  return {t.data<float>(), t.numel()};
}

Eigen::Map<const Eigen::ArrayXf> cflat(const Tensor& t, const char* op) {
  check_f32(t, op);
  return {t.data<float>(), t.numel()};
}

// Per-row weights of gather/scatter: w[i], or 1 when the weight tensor is undefined.
const float* row_weights(const Tensor& weight, std::int64_t n, const char* op) {
  if (!weight.defined()) return nullptr;
  check_f32(weight, op);
  FIVEFOLD_CHECK(weight.numel() == n, op, ": weight ", weight.str(), " needs one value per row (", n, ")");
  return weight.data<float>();
}

void check_index(const Tensor& index, std::int64_t n, std::int64_t limit, const char* op) {
  check_i32(index, op);
  FIVEFOLD_CHECK(index.numel() == n, op, ": index ", index.str(), " needs ", n, " entries");
  const std::int32_t* id = index.data<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i)
    FIVEFOLD_CHECK(id[i] >= 0 && id[i] < limit, op, ": index ", id[i], " at ", i, " is outside [0, ", limit, ")");
}

}  // namespace

void EigenOps::mul(Tensor& y, const Tensor& a, const Tensor& b) {
  same_size(y, a, "mul");
  same_size(a, b, "mul");
  flat(y, "mul") = cflat(a, "mul") * cflat(b, "mul");
}

double EigenOps::sum_squares(const Tensor& x) { return cflat(x, "sum_squares").cast<double>().square().sum(); }

void EigenOps::row_dot(Tensor& out, const Tensor& a, const Tensor& b) {
  same_size(a, b, "row_dot");
  CRows A = crows(a, "row_dot"), B = crows(b, "row_dot", cols_of(a));
  FIVEFOLD_CHECK(out.numel() == A.rows(), "row_dot: out ", out.str(), " needs ", A.rows(), " values");
  flat(out, "row_dot") = (A * B).rowwise().sum();
}

void EigenOps::gather_rows(Tensor& out, const Tensor& src, const Tensor& index, const Tensor& weight) {
  CRows S = crows(src, "gather_rows");
  Rows O = rows(out, "gather_rows", S.cols());
  check_index(index, O.rows(), S.rows(), "gather_rows");
  const std::int32_t* id = index.data<std::int32_t>();
  const float* w = row_weights(weight, O.rows(), "gather_rows");
  for (Eigen::Index i = 0; i < O.rows(); ++i) {
    if (w) {
      O.row(i) = w[i] * S.row(id[i]);
    } else {
      O.row(i) = S.row(id[i]);
    }
  }
}

void EigenOps::scatter_add_rows(Tensor& dst, const Tensor& src, const Tensor& index, const Tensor& weight) {
  Rows D = rows(dst, "scatter_add_rows");
  CRows S = crows(src, "scatter_add_rows", D.cols());
  check_index(index, S.rows(), D.rows(), "scatter_add_rows");
  const std::int32_t* id = index.data<std::int32_t>();
  const float* w = row_weights(weight, S.rows(), "scatter_add_rows");
  for (Eigen::Index i = 0; i < S.rows(); ++i) {
    if (w) {
      D.row(id[i]) += w[i] * S.row(i);
    } else {
      D.row(id[i]) += S.row(i);
    }
  }
}

void EigenOps::rmsnorm_forward(Tensor& y, Tensor& rstd, const Tensor& x, const Tensor& w, float eps) {
  CRows X = crows(x, "rmsnorm_forward");
  Rows Y = rows(y, "rmsnorm_forward", X.cols());
  FIVEFOLD_CHECK(Y.rows() == X.rows() && w.numel() == X.cols() && rstd.numel() == X.rows(),
                 "rmsnorm_forward: x ", x.str(), ", y ", y.str(), ", w ", w.str(), ", rstd ", rstd.str(),
                 " do not match ([N, C], [N, C], [C], [N])");
  auto W = cflat(w, "rmsnorm_forward").transpose();
  auto R = flat(rstd, "rmsnorm_forward");
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    const float r = 1.0f / std::sqrt(X.row(i).square().mean() + eps);
    R(i) = r;
    Y.row(i) = X.row(i) * r * W;
  }
}

void EigenOps::rmsnorm_backward(Tensor& dx, Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                                const Tensor& rstd) {
  CRows X = crows(x, "rmsnorm_backward");
  CRows DY = crows(dy, "rmsnorm_backward", X.cols());
  Rows DX = rows(dx, "rmsnorm_backward", X.cols());
  FIVEFOLD_CHECK(DY.rows() == X.rows() && DX.rows() == X.rows() && w.numel() == X.cols() &&
                     dw.numel() == X.cols() && rstd.numel() == X.rows(),
                 "rmsnorm_backward: shapes of dx ", dx.str(), ", dw ", dw.str(), ", dy ", dy.str(), ", x ", x.str(),
                 ", w ", w.str(), ", rstd ", rstd.str(), " do not match");
  auto W = cflat(w, "rmsnorm_backward").transpose();
  auto DW = flat(dw, "rmsnorm_backward").transpose();
  auto R = cflat(rstd, "rmsnorm_backward");
  Eigen::Array<float, 1, Eigen::Dynamic> xhat(X.cols()), gw(X.cols());
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    xhat = X.row(i) * R(i);
    gw = DY.row(i) * W;
    const float c = (gw * xhat).mean();
    DW += DY.row(i) * xhat;
    DX.row(i) = R(i) * (gw - xhat * c);
  }
}

void EigenOps::rope(Tensor& x, const Tensor& pos, float theta, bool inverse) {
  check_f32(x, "rope");
  check_i32(pos, "rope");
  FIVEFOLD_CHECK(x.ndim() == 4 && x.dim(3) % 2 == 0 && pos.numel() == x.dim(1), "rope: x ", x.str(),
                 " must be [B, T, nh, hd] with hd even and pos ", pos.str(), " [T]");
  const std::int64_t B = x.dim(0), T = x.dim(1), nh = x.dim(2), hd = x.dim(3), half = hd / 2;
  // Angles and cos/sin in double, rounded once to float (the CUDA kernel does the same).
  std::vector<float> cs(static_cast<std::size_t>(T * half)), sn(cs.size());
  const std::int32_t* p = pos.data<std::int32_t>();
  for (std::int64_t t = 0; t < T; ++t) {
    for (std::int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(p[t]) * std::pow(static_cast<double>(theta), -2.0 * i / hd);
      cs[t * half + i] = static_cast<float>(std::cos(angle));
      sn[t * half + i] = static_cast<float>(inverse ? -std::sin(angle) : std::sin(angle));
    }
  }
  float* d = x.data<float>();
  for (std::int64_t b = 0; b < B; ++b) {
    for (std::int64_t t = 0; t < T; ++t) {
      Eigen::Map<const Eigen::ArrayXf> c(&cs[t * half], half), s(&sn[t * half], half);
      for (std::int64_t h = 0; h < nh; ++h) {
        float* row = d + ((b * T + t) * nh + h) * hd;
        Eigen::Map<Eigen::ArrayXf> x1(row, half), x2(row + half, half);
        const Eigen::ArrayXf a = x1;
        x1 = a * c - x2 * s;
        x2 = x2 * c + a * s;
      }
    }
  }
}

void EigenOps::swiglu_forward(Tensor& h, const Tensor& g, const Tensor& u) {
  same_size(h, g, "swiglu_forward");
  same_size(g, u, "swiglu_forward");
  auto G = cflat(g, "swiglu_forward");
  flat(h, "swiglu_forward") = G / (1.0f + (-G).exp()) * cflat(u, "swiglu_forward");
}

void EigenOps::swiglu_backward(Tensor& dg, Tensor& du, const Tensor& dh, const Tensor& g, const Tensor& u) {
  same_size(dg, g, "swiglu_backward");
  same_size(du, g, "swiglu_backward");
  same_size(dh, g, "swiglu_backward");
  same_size(u, g, "swiglu_backward");
  auto G = cflat(g, "swiglu_backward");
  auto DH = cflat(dh, "swiglu_backward");
  const Eigen::ArrayXf s = 1.0f / (1.0f + (-G).exp());
  flat(du, "swiglu_backward") = DH * G * s;
  flat(dg, "swiglu_backward") = DH * cflat(u, "swiglu_backward") * s * (1.0f + G * (1.0f - s));
}

void EigenOps::softmax_rows(Tensor& y, const Tensor& x) {
  same_size(y, x, "softmax_rows");
  CRows X = crows(x, "softmax_rows");
  Rows Y = rows(y, "softmax_rows", X.cols());
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    Y.row(i) = (X.row(i) - X.row(i).maxCoeff()).exp();
    Y.row(i) /= Y.row(i).sum();
  }
}

void EigenOps::cross_entropy(Tensor& loss, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                             float grad_scale) {
  same_size(dlogits, logits, "cross_entropy");
  CRows X = crows(logits, "cross_entropy");
  Rows D = rows(dlogits, "cross_entropy", X.cols());
  FIVEFOLD_CHECK(loss.numel() == X.rows(), "cross_entropy: loss ", loss.str(), " needs one value per row (",
                 X.rows(), ")");
  check_index(targets, X.rows(), X.cols(), "cross_entropy");
  const std::int32_t* tgt = targets.data<std::int32_t>();
  auto L = flat(loss, "cross_entropy");
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    const float m = X.row(i).maxCoeff();
    const float lse = m + std::log((X.row(i) - m).exp().sum());
    L(i) = lse - X(i, tgt[i]);  // read before D (which may alias X) is written
    D.row(i) = (X.row(i) - lse).exp() * grad_scale;
    D(i, tgt[i]) -= grad_scale;
  }
}

void EigenOps::adamw_step(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, float lr, float beta1, float beta2,
                          float eps, float weight_decay, int step) {
  FIVEFOLD_CHECK(step >= 1, "adamw_step: step counts from 1 (got ", step, ")");
  same_size(p, g, "adamw_step");
  same_size(p, m, "adamw_step");
  same_size(p, v, "adamw_step");
  auto P = flat(p, "adamw_step");
  auto G = cflat(g, "adamw_step");
  auto M = flat(m, "adamw_step");
  auto V = flat(v, "adamw_step");
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), step);
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  P *= 1.0f - lr * weight_decay;
  M = beta1 * M + (1.0f - beta1) * G;
  V = beta2 * V + (1.0f - beta2) * G * G;
  P -= step_size * M / (V.sqrt() / bc2_sqrt + eps);
}

}  // namespace fivefold
