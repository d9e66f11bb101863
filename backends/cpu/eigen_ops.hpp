// SPDX-License-Identifier: MIT
/// @file eigen_ops.hpp
/// @brief Ops on host memory with Eigen: the reference implementation of every op.
///
/// The model ops (after matmul) live in eigen_model_ops.cpp and eigen_attention_ops.cpp.
#pragma once

#include "backends/ops.hpp"

namespace fivefold {

/// Eigen implementation of Ops (single-threaded: ranks are the parallelism).
class EigenOps : public Ops {
 public:
  std::string name() const override { return "eigen"; }
  Device device() const override { return Device::host; }
  void synchronize() override {}

  void fill(Tensor& x, float value) override;
  void add(Tensor& y, const Tensor& a, const Tensor& b) override;
  void maximum(Tensor& y, const Tensor& a, const Tensor& b) override;
  void axpy(Tensor& y, float alpha, const Tensor& x) override;
  void scale(Tensor& x, float alpha) override;
  void matmul(Tensor& c, const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, float alpha,
              float beta) override;

  void mul(Tensor& y, const Tensor& a, const Tensor& b) override;
  double sum_squares(const Tensor& x) override;
  void row_dot(Tensor& out, const Tensor& a, const Tensor& b) override;
  void gather_rows(Tensor& out, const Tensor& src, const Tensor& index, const Tensor& weight) override;
  void scatter_add_rows(Tensor& dst, const Tensor& src, const Tensor& index, const Tensor& weight) override;
  void rmsnorm_forward(Tensor& y, Tensor& rstd, const Tensor& x, const Tensor& w, float eps) override;
  void rmsnorm_backward(Tensor& dx, Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                        const Tensor& rstd) override;
  void rope(Tensor& x, const Tensor& pos, float theta, bool inverse) override;
  void attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                         const Tensor& q_pos, const Tensor& k_pos) override;
  void attention_backward(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout, const Tensor& q, const Tensor& k,
                          const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& q_pos,
                          const Tensor& k_pos) override;
  void attention_merge(Tensor& out, Tensor& lse, const Tensor& out_b, const Tensor& lse_b) override;
  void swiglu_forward(Tensor& h, const Tensor& g, const Tensor& u) override;
  void swiglu_backward(Tensor& dg, Tensor& du, const Tensor& dh, const Tensor& g, const Tensor& u) override;
  void softmax_rows(Tensor& y, const Tensor& x) override;
  void cross_entropy(Tensor& loss, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                     float grad_scale) override;
  void adamw_step(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, float lr, float beta1, float beta2, float eps,
                  float weight_decay, int step) override;
};

}  // namespace fivefold
