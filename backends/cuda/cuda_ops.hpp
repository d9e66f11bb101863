// SPDX-License-Identifier: MIT
/// @file cuda_ops.hpp
/// @brief Ops on this rank's GPU: kernels from kernels/ and cuBLAS, queued on the compute stream.
///
/// Every method is asynchronous on the compute stream (see cuda_context.hpp); copying a result
/// to the host, synchronize(), or a blocking collective waits for it. Results are checked
/// against EigenOps by tests/cuda.
#pragma once

#include "backends/ops.hpp"

namespace fivefold {

/// CUDA implementation of Ops (needs the context that make_cuda_backend() creates).
class CudaOps : public Ops {
 public:
  /// Binds to the process's CUDA context; throws Error if there is none yet.
  CudaOps();

  std::string name() const override { return "cuda"; }
  Device device() const override { return Device::cuda; }
  void synchronize() override;

  void fill(Tensor& x, float value) override;
  void add(Tensor& y, const Tensor& a, const Tensor& b) override;
  void maximum(Tensor& y, const Tensor& a, const Tensor& b) override;
  void axpy(Tensor& y, float alpha, const Tensor& x) override;
  void scale(Tensor& x, float alpha) override;
  void matmul(Tensor& c, const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, float alpha,
              float beta) override;

  // Model ops (kernels/model_ops.cu, rows.cu, attention.cu). Deterministic run to run (fixed
  // reduction orders, no float atomics); index values are not range-checked on the GPU.
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

 private:
  void* stream_;  // the compute stream (cudaStream_t), opaque here
};

}  // namespace fivefold
