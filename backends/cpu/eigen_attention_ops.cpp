// SPDX-License-Identifier: MIT
// EigenOps attention: causal attention with positions and GQA, forward, backward and the
// online-softmax merge. Each (batch, query head) is a pair of small GEMMs on strided Eigen maps
// of the [B, T, H, hd] layout (no copies, no scalar triple loops); the mask comes from positions.
#include <cmath>
#include <limits>

#include <Eigen/Core>

#include "backends/cpu/eigen_ops.hpp"

namespace fivefold {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
using CStrided = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Sizes of one attention call, checked once.
struct Dims {
  std::int64_t B, T, S, H, Hkv, hd;
};

void check_t(const Tensor& t, DType dt, const char* op, const char* what) {
  FIVEFOLD_CHECK(t.defined() && t.dtype() == dt && t.device() == Device::host, op, ": ", what, " must be a ",
                 dtype_name(dt), " host tensor, got ", t.str());
}

Dims attention_dims(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& q_pos, const Tensor& k_pos,
                    const char* op) {
  check_t(q, DType::f32, op, "q");
  check_t(k, DType::f32, op, "k");
  check_t(v, DType::f32, op, "v");
  check_t(q_pos, DType::i32, op, "q_pos");
  check_t(k_pos, DType::i32, op, "k_pos");
  FIVEFOLD_CHECK(q.ndim() == 4 && k.ndim() == 4 && k.shape() == v.shape(), op, ": q ", q.str(), " must be [B, T, H, hd]",
                 " and k ", k.str(), ", v ", v.str(), " [B, S, Hkv, hd]");
  const Dims d{q.dim(0), q.dim(1), k.dim(1), q.dim(2), k.dim(2), q.dim(3)};
  FIVEFOLD_CHECK(k.dim(0) == d.B && k.dim(3) == d.hd && d.Hkv > 0 && d.H % d.Hkv == 0, op, ": q ", q.str(), " and k ",
                 k.str(), " need the same B and hd, and Hkv dividing H");
  FIVEFOLD_CHECK(q_pos.numel() == d.T && k_pos.numel() == d.S, op, ": q_pos ", q_pos.str(), " must be [T] and k_pos ",
                 k_pos.str(), " [S]");
  return d;
}

void check_like(const Tensor& t, const Shape& s, const char* op, const char* what) {
  check_t(t, DType::f32, op, what);
  FIVEFOLD_CHECK(t.shape() == s, op, ": ", what, " ", t.str(), " must have shape ", shape_str(s));
}

// Scores of query head h of batch b against its kv head, scaled, with -inf where masked.
void scores(RowMat& s, const CStrided& Q, const CStrided& K, const std::int32_t* qp, const std::int32_t* kp,
            float scale) {
  s.noalias() = Q * K.transpose();
  s *= scale;
  for (Eigen::Index t = 0; t < s.rows(); ++t)
    for (Eigen::Index j = 0; j < s.cols(); ++j)
      if (kp[j] > qp[t]) s(t, j) = kNegInf;
}

}  // namespace

void EigenOps::attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& q_pos, const Tensor& k_pos) {
  const Dims d = attention_dims(q, k, v, q_pos, k_pos, "attention_forward");
  check_like(out, q.shape(), "attention_forward", "out");
  check_like(lse, {d.B, d.H, d.T}, "attention_forward", "lse");
  const float scale = 1.0f / std::sqrt(static_cast<float>(d.hd));
  const std::int64_t group = d.H / d.Hkv;
  const std::int32_t* qp = q_pos.data<std::int32_t>();
  const std::int32_t* kp = k_pos.data<std::int32_t>();
  RowMat s(d.T, d.S);
  for (std::int64_t b = 0; b < d.B; ++b) {
    for (std::int64_t h = 0; h < d.H; ++h) {
      const std::int64_t hk = h / group;
      CStrided Q(q.data<float>() + (b * d.T * d.H + h) * d.hd, d.T, d.hd, Eigen::OuterStride<>(d.H * d.hd));
      CStrided K(k.data<float>() + (b * d.S * d.Hkv + hk) * d.hd, d.S, d.hd, Eigen::OuterStride<>(d.Hkv * d.hd));
      CStrided V(v.data<float>() + (b * d.S * d.Hkv + hk) * d.hd, d.S, d.hd, Eigen::OuterStride<>(d.Hkv * d.hd));
      Strided O(out.data<float>() + (b * d.T * d.H + h) * d.hd, d.T, d.hd, Eigen::OuterStride<>(d.H * d.hd));
      float* L = lse.data<float>() + (b * d.H + h) * d.T;
      scores(s, Q, K, qp, kp, scale);
      for (std::int64_t t = 0; t < d.T; ++t) {
        const float m = d.S > 0 ? s.row(t).maxCoeff() : kNegInf;
        if (m == kNegInf) {  // no visible key: out 0, lse -inf
          s.row(t).setZero();
          L[t] = kNegInf;
          continue;
        }
        s.row(t) = (s.row(t).array() - m).exp();
        const float sum = s.row(t).sum();
        L[t] = m + std::log(sum);
        s.row(t) /= sum;
      }
      O.noalias() = s * V;
    }
  }
}

void EigenOps::attention_backward(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout, const Tensor& q,
                                  const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                                  const Tensor& q_pos, const Tensor& k_pos) {
  const Dims d = attention_dims(q, k, v, q_pos, k_pos, "attention_backward");
  check_like(dq, q.shape(), "attention_backward", "dq");
  check_like(dout, q.shape(), "attention_backward", "dout");
  check_like(out, q.shape(), "attention_backward", "out");
  check_like(dk, k.shape(), "attention_backward", "dk");
  check_like(dv, k.shape(), "attention_backward", "dv");
  check_like(lse, {d.B, d.H, d.T}, "attention_backward", "lse");
  const float scale = 1.0f / std::sqrt(static_cast<float>(d.hd));
  const std::int64_t group = d.H / d.Hkv;
  const std::int32_t* qp = q_pos.data<std::int32_t>();
  const std::int32_t* kp = k_pos.data<std::int32_t>();
  const Eigen::OuterStride<> qs(d.H * d.hd), ks(d.Hkv * d.hd);
  RowMat p(d.T, d.S), dp(d.T, d.S);
  Eigen::VectorXf D(d.T);
  for (std::int64_t b = 0; b < d.B; ++b) {
    for (std::int64_t h = 0; h < d.H; ++h) {
      const std::int64_t hk = h / group, qo = (b * d.T * d.H + h) * d.hd, ko = (b * d.S * d.Hkv + hk) * d.hd;
      CStrided Q(q.data<float>() + qo, d.T, d.hd, qs), K(k.data<float>() + ko, d.S, d.hd, ks);
      CStrided V(v.data<float>() + ko, d.S, d.hd, ks);
      CStrided O(out.data<float>() + qo, d.T, d.hd, qs), dO(dout.data<float>() + qo, d.T, d.hd, qs);
      Strided dQ(dq.data<float>() + qo, d.T, d.hd, qs), dK(dk.data<float>() + ko, d.S, d.hd, ks);
      Strided dV(dv.data<float>() + ko, d.S, d.hd, ks);
      const float* L = lse.data<float>() + (b * d.H + h) * d.T;
      scores(p, Q, K, qp, kp, scale);
      for (std::int64_t t = 0; t < d.T; ++t) {
        if (L[t] == kNegInf) {
          p.row(t).setZero();  // no visible key anywhere: no gradient
        } else {
          p.row(t) = (p.row(t).array() - L[t]).exp();  // exp(-inf) = 0 on masked keys
        }
      }
      D = (dO.array() * O.array()).rowwise().sum().matrix();
      dV.noalias() += p.transpose() * dO;
      dp.noalias() = dO * V.transpose();
      dp = (p.array() * (dp.array().colwise() - D.array())).matrix();  // dS
      dQ.noalias() += scale * (dp * K);
      dK.noalias() += scale * (dp.transpose() * Q);
    }
  }
}

void EigenOps::attention_merge(Tensor& out, Tensor& lse, const Tensor& out_b, const Tensor& lse_b) {
  check_t(out, DType::f32, "attention_merge", "out");
  FIVEFOLD_CHECK(out.ndim() == 4, "attention_merge: out ", out.str(), " must be [B, T, H, hd]");
  const std::int64_t B = out.dim(0), T = out.dim(1), H = out.dim(2), hd = out.dim(3);
  check_like(out_b, out.shape(), "attention_merge", "out_b");
  check_like(lse, {B, H, T}, "attention_merge", "lse");
  check_like(lse_b, {B, H, T}, "attention_merge", "lse_b");
  for (std::int64_t b = 0; b < B; ++b) {
    for (std::int64_t h = 0; h < H; ++h) {
      for (std::int64_t t = 0; t < T; ++t) {
        float& la = lse.data<float>()[(b * H + h) * T + t];
        const float lb = lse_b.data<float>()[(b * H + h) * T + t];
        Eigen::Map<Eigen::ArrayXf> oa(out.data<float>() + ((b * T + t) * H + h) * hd, hd);
        Eigen::Map<const Eigen::ArrayXf> ob(out_b.data<float>() + ((b * T + t) * H + h) * hd, hd);
        if (lb == kNegInf) continue;  // nothing new
        if (la == kNegInf) {
          oa = ob;
          la = lb;
          continue;
        }
        const float m = std::max(la, lb);
        const float l = m + std::log(std::exp(la - m) + std::exp(lb - m));
        oa = oa * std::exp(la - l) + ob * std::exp(lb - l);
        la = l;
      }
    }
  }
}

}  // namespace fivefold
