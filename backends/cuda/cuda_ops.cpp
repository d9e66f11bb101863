// SPDX-License-Identifier: MIT
// CudaOps: elementwise ops launch the kernels of kernels/elementwise.cu; matmul is one cuBLAS
// SGEMM; the model ops (after matmul) launch kernels/model_ops.cu, rows.cu and attention.cu. cuBLAS is column-major and our tensors are row-major, so we ask cuBLAS for C^T:
// a row-major [M, N] buffer read column-major *is* C^T [N, M], and C^T = op(B)^T op(A)^T,
// where the row-major buffers of A and B, read column-major, are already A^T and B^T.
// To add an op: a launch declaration in kernels/<family>.hpp, the kernel in the .cu file,
// and a method here that checks the tensors and launches on stream_.
#include "backends/cuda/cuda_ops.hpp"
#include "backends/ops_checks.hpp"

#include <climits>
#include <cmath>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/cuda_context.hpp"
#include "kernels/attention.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/model_ops.hpp"
#include "kernels/rows.hpp"

namespace fivefold {

namespace {

void check_f32_cuda(const Tensor& t, const char* op) {
  FIVEFOLD_CHECK(t.dtype() == DType::f32 && t.device() == Device::cuda, op,
                 ": cuda ops need f32 CUDA tensors, got ", t.str(), "; upload it with ops.upload()");
}

float* ptr(Tensor& t, const char* op) {
  check_f32_cuda(t, op);
  return t.data<float>();
}

const float* cptr(const Tensor& t, const char* op) {
  check_f32_cuda(t, op);
  return t.data<float>();
}

using ops_checks::as_matrix;
using ops_checks::overlaps;
using ops_checks::same_numel;

int blas_int(std::int64_t n, const Tensor& t) {
  FIVEFOLD_CHECK(n <= INT_MAX, "matmul: dimension ", n, " of ", t.str(), " exceeds cuBLAS's int; split the matrix");
  return static_cast<int>(n);
}

}  // namespace

CudaOps::CudaOps() : stream_(cuda_context().stream) {}

void CudaOps::synchronize() { FIVEFOLD_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_))); }

void CudaOps::fill(Tensor& x, float value) { kernels::fill(ptr(x, "fill"), value, x.numel(), stream_); }

void CudaOps::add(Tensor& y, const Tensor& a, const Tensor& b) {
  same_numel(y, a, "add");
  same_numel(a, b, "add");
  kernels::add(ptr(y, "add"), cptr(a, "add"), cptr(b, "add"), y.numel(), stream_);
}

void CudaOps::maximum(Tensor& y, const Tensor& a, const Tensor& b) {
  same_numel(y, a, "maximum");
  same_numel(a, b, "maximum");
  kernels::maximum(ptr(y, "maximum"), cptr(a, "maximum"), cptr(b, "maximum"), y.numel(), stream_);
}

void CudaOps::axpy(Tensor& y, float alpha, const Tensor& x) {
  same_numel(y, x, "axpy");
  kernels::axpy(ptr(y, "axpy"), alpha, cptr(x, "axpy"), y.numel(), stream_);
}

void CudaOps::scale(Tensor& x, float alpha) { kernels::scale(ptr(x, "scale"), alpha, x.numel(), stream_); }

void CudaOps::matmul(Tensor& c, const Tensor& a, const Tensor& b, bool ta, bool tb, float alpha, float beta) {
  check_f32_cuda(a, "matmul");
  check_f32_cuda(b, "matmul");
  check_f32_cuda(c, "matmul");
  const auto [ar, ac] = as_matrix(a);
  const auto [br, bc] = as_matrix(b);
  const auto [cr, cc] = as_matrix(c);
  const std::int64_t m = ta ? ac : ar, k = ta ? ar : ac;
  const std::int64_t k2 = tb ? bc : br, n = tb ? br : bc;
  FIVEFOLD_CHECK(k == k2 && cr == m && cc == n, "matmul: op(A) ", a.str(), (ta ? "^T" : ""), " x op(B) ", b.str(),
                 (tb ? "^T" : ""), " does not give C ", c.str());
  FIVEFOLD_CHECK(!overlaps(c, a) && !overlaps(c, b), "matmul: C ", c.str(),
                 " must not share memory with A or B; write into a separate tensor");
  if (m == 0 || n == 0) return;
  if (k == 0) {  // C = beta * C (cuBLAS would do the same; spelled out for clarity)
    if (beta == 0.0f) {
      c.zero();
    } else {
      scale(c, beta);
    }
    return;
  }
  // TUTORIAL: row-major C [M, N] = op(A) op(B)  <=>  column-major C^T [N, M] = op(B)^T op(A)^T.
  // The buffer of B (row-major [K, N], or [N, K] when transposed) read column-major is B^T,
  // so op(B)^T needs no transpose unless tb; likewise for A. Leading dimensions are the
  // row lengths of the row-major buffers.
  const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int ldb = blas_int(bc, b);  // row length of B's buffer: N, or K when transposed
  const int lda = blas_int(ac, a);  // row length of A's buffer: K, or M when transposed
  const int ldc = blas_int(n, c);
  FIVEFOLD_CUDA_CHECK(cublasSgemm(cuda_context().cublas, op_b, op_a, blas_int(n, c), blas_int(m, c), blas_int(k, a),
                                  &alpha, b.data<float>(), ldb, a.data<float>(), lda, &beta, c.data<float>(), ldc));
}

// ---- Model ops. Shape checks mirror EigenOps (same messages), plus the device and dtype;
// index values are not range-checked (that needs a host sync; see kernels/model_ops.hpp).
namespace {

void check_f32(const Tensor& t, const char* op) {
  FIVEFOLD_CHECK(t.defined() && t.dtype() == DType::f32 && t.device() == Device::cuda, op,
                 ": cuda ops need defined f32 CUDA tensors, got ", t.str(), "; upload it with ops.upload()");
}

void check_i32(const Tensor& t, const char* op, const char* what) {
  FIVEFOLD_CHECK(t.defined() && t.dtype() == DType::i32 && t.device() == Device::cuda, op, ": ", what,
                 " must be an int32 CUDA tensor, got ", t.str(), "; upload it with ops.upload()");
}

std::int64_t cols_of(const Tensor& t) { return t.ndim() == 0 ? 1 : t.dim(-1); }

// Rows of @p t viewed as [rows, cols] (cols = its last dimension unless given).
std::int64_t rows_of(const Tensor& t, const char* op, std::int64_t cols = -1) {
  check_f32(t, op);
  if (cols < 0) cols = cols_of(t);
  FIVEFOLD_CHECK(cols > 0 && t.numel() % cols == 0, op, ": ", t.str(), " is not rows of ", cols);
  return t.numel() / cols;
}

// Uninitialised device scratch of @p n floats (at least one), freed in stream order.
Tensor scratch(std::int64_t n) { return Tensor::empty({n > 0 ? n : 1}, DType::f32, Device::cuda); }

const float* row_weights(const Tensor& weight, std::int64_t n, const char* op) {
  if (!weight.defined()) return nullptr;
  check_f32(weight, op);
  FIVEFOLD_CHECK(weight.numel() == n, op, ": weight ", weight.str(), " needs one value per row (", n, ")");
  return weight.data<float>();
}

const std::int32_t* index_ptr(const Tensor& index, std::int64_t n, const char* op) {
  check_i32(index, op, "index");
  FIVEFOLD_CHECK(index.numel() == n, op, ": index ", index.str(), " needs ", n, " entries");
  return index.data<std::int32_t>();
}

// Sizes of an attention call, checked as EigenOps checks them.
kernels::AttentionDims attention_dims(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& q_pos,
                                      const Tensor& k_pos, const char* op) {
  check_f32(q, op);
  check_f32(k, op);
  check_f32(v, op);
  check_i32(q_pos, op, "q_pos");
  check_i32(k_pos, op, "k_pos");
  FIVEFOLD_CHECK(q.ndim() == 4 && k.ndim() == 4 && k.shape() == v.shape(), op, ": q ", q.str(), " must be [B, T, H, hd]",
                 " and k ", k.str(), ", v ", v.str(), " [B, S, Hkv, hd]");
  const kernels::AttentionDims d{q.dim(0), q.dim(1), k.dim(1), q.dim(2), k.dim(2), q.dim(3)};
  FIVEFOLD_CHECK(k.dim(0) == d.b && k.dim(3) == d.hd && d.hkv > 0 && d.h % d.hkv == 0 && d.hd > 0, op, ": q ",
                 q.str(), " and k ", k.str(), " need the same B and hd > 0, and Hkv dividing H");
  FIVEFOLD_CHECK(q_pos.numel() == d.t && k_pos.numel() == d.s, op, ": q_pos ", q_pos.str(), " must be [T] and k_pos ",
                 k_pos.str(), " [S]");
  FIVEFOLD_CHECK(d.t <= INT_MAX && d.s <= INT_MAX && d.h * d.hd <= INT_MAX, op, ": q ", q.str(), ", k ", k.str(),
                 " exceed cuBLAS's int dimensions; split the sequence");
  return d;
}

void check_like(const Tensor& t, const Shape& s, const char* op, const char* what) {
  check_f32(t, op);
  FIVEFOLD_CHECK(t.shape() == s, op, ": ", what, " ", t.str(), " must have shape ", shape_str(s));
}

}  // namespace

void CudaOps::mul(Tensor& y, const Tensor& a, const Tensor& b) {
  same_numel(y, a, "mul");
  same_numel(a, b, "mul");
  kernels::mul(ptr(y, "mul"), cptr(a, "mul"), cptr(b, "mul"), y.numel(), stream_);
}

double CudaOps::sum_squares(const Tensor& x) {
  check_f32(x, "sum_squares");
  Tensor s = scratch(2 * kernels::sum_squares_scratch(x.numel()));  // doubles
  return kernels::sum_squares(x.data<float>(), x.numel(), static_cast<double*>(s.raw()), stream_);
}

void CudaOps::row_dot(Tensor& out, const Tensor& a, const Tensor& b) {
  same_numel(a, b, "row_dot");
  const std::int64_t n = rows_of(a, "row_dot"), c = cols_of(a);
  rows_of(b, "row_dot", c);
  check_f32(out, "row_dot");
  FIVEFOLD_CHECK(out.numel() == n, "row_dot: out ", out.str(), " needs ", n, " values");
  kernels::row_dot(out.data<float>(), a.data<float>(), b.data<float>(), n, c, stream_);
}

void CudaOps::gather_rows(Tensor& out, const Tensor& src, const Tensor& index, const Tensor& weight) {
  const std::int64_t r = rows_of(src, "gather_rows"), c = cols_of(src);
  const std::int64_t n = rows_of(out, "gather_rows", c);
  kernels::gather_rows(out.data<float>(), src.data<float>(), index_ptr(index, n, "gather_rows"),
                       row_weights(weight, n, "gather_rows"), n, c, r, stream_);
}

void CudaOps::scatter_add_rows(Tensor& dst, const Tensor& src, const Tensor& index, const Tensor& weight) {
  const std::int64_t r = rows_of(dst, "scatter_add_rows"), c = cols_of(dst);
  const std::int64_t n = rows_of(src, "scatter_add_rows", c);
  kernels::scatter_add_rows(dst.data<float>(), src.data<float>(), index_ptr(index, n, "scatter_add_rows"),
                            row_weights(weight, n, "scatter_add_rows"), n, c, r, stream_);
}

void CudaOps::rmsnorm_forward(Tensor& y, Tensor& rstd, const Tensor& x, const Tensor& w, float eps) {
  const std::int64_t n = rows_of(x, "rmsnorm_forward"), c = cols_of(x);
  check_f32(w, "rmsnorm_forward");
  check_f32(rstd, "rmsnorm_forward");
  FIVEFOLD_CHECK(rows_of(y, "rmsnorm_forward", c) == n && w.numel() == c && rstd.numel() == n,
                 "rmsnorm_forward: x ", x.str(), ", y ", y.str(), ", w ", w.str(), ", rstd ", rstd.str(),
                 " do not match ([N, C], [N, C], [C], [N])");
  kernels::rmsnorm_forward(y.data<float>(), rstd.data<float>(), x.data<float>(), w.data<float>(), n, c, eps, stream_);
}

void CudaOps::rmsnorm_backward(Tensor& dx, Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                               const Tensor& rstd) {
  const std::int64_t n = rows_of(x, "rmsnorm_backward"), c = cols_of(x);
  check_f32(w, "rmsnorm_backward");
  check_f32(dw, "rmsnorm_backward");
  check_f32(rstd, "rmsnorm_backward");
  FIVEFOLD_CHECK(rows_of(dy, "rmsnorm_backward", c) == n && rows_of(dx, "rmsnorm_backward", c) == n &&
                     w.numel() == c && dw.numel() == c && rstd.numel() == n,
                 "rmsnorm_backward: shapes of dx ", dx.str(), ", dw ", dw.str(), ", dy ", dy.str(), ", x ", x.str(),
                 ", w ", w.str(), ", rstd ", rstd.str(), " do not match");
  Tensor s = scratch(kernels::rmsnorm_backward_scratch(n, c));
  kernels::rmsnorm_backward(dx.data<float>(), dw.data<float>(), dy.data<float>(), x.data<float>(), w.data<float>(),
                            rstd.data<float>(), n, c, s.data<float>(), stream_);
}

void CudaOps::rope(Tensor& x, const Tensor& pos, float theta, bool inverse) {
  check_f32(x, "rope");
  check_i32(pos, "rope", "pos");
  FIVEFOLD_CHECK(x.ndim() == 4 && x.dim(3) % 2 == 0 && pos.numel() == x.dim(1), "rope: x ", x.str(),
                 " must be [B, T, nh, hd] with hd even and pos ", pos.str(), " [T]");
  Tensor s = scratch(kernels::rope_scratch(x.dim(1), x.dim(3)));
  kernels::rope(x.data<float>(), pos.data<std::int32_t>(), x.dim(0), x.dim(1), x.dim(2), x.dim(3), theta, inverse,
                s.data<float>(), stream_);
}

void CudaOps::attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& q_pos, const Tensor& k_pos) {
  const kernels::AttentionDims d = attention_dims(q, k, v, q_pos, k_pos, "attention_forward");
  check_like(out, q.shape(), "attention_forward", "out");
  check_like(lse, {d.b, d.h, d.t}, "attention_forward", "lse");
  Tensor s = scratch(kernels::attention_forward_scratch(d));
  kernels::attention_forward(out.data<float>(), lse.data<float>(), q.data<float>(), k.data<float>(), v.data<float>(),
                             q_pos.data<std::int32_t>(), k_pos.data<std::int32_t>(), d, s.data<float>(),
                             cuda_context().cublas, stream_);
}

void CudaOps::attention_backward(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout, const Tensor& q,
                                 const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                                 const Tensor& q_pos, const Tensor& k_pos) {
  const kernels::AttentionDims d = attention_dims(q, k, v, q_pos, k_pos, "attention_backward");
  check_like(dq, q.shape(), "attention_backward", "dq");
  check_like(dout, q.shape(), "attention_backward", "dout");
  check_like(out, q.shape(), "attention_backward", "out");
  check_like(dk, k.shape(), "attention_backward", "dk");
  check_like(dv, k.shape(), "attention_backward", "dv");
  check_like(lse, {d.b, d.h, d.t}, "attention_backward", "lse");
  Tensor s = scratch(kernels::attention_backward_scratch(d));
  kernels::attention_backward(dq.data<float>(), dk.data<float>(), dv.data<float>(), dout.data<float>(),
                              q.data<float>(), k.data<float>(), v.data<float>(), out.data<float>(), lse.data<float>(),
                              q_pos.data<std::int32_t>(), k_pos.data<std::int32_t>(), d, s.data<float>(),
                              cuda_context().cublas, stream_);
}

void CudaOps::attention_merge(Tensor& out, Tensor& lse, const Tensor& out_b, const Tensor& lse_b) {
  check_f32(out, "attention_merge");
  FIVEFOLD_CHECK(out.ndim() == 4, "attention_merge: out ", out.str(), " must be [B, T, H, hd]");
  const std::int64_t B = out.dim(0), T = out.dim(1), H = out.dim(2), hd = out.dim(3);
  check_like(out_b, out.shape(), "attention_merge", "out_b");
  check_like(lse, {B, H, T}, "attention_merge", "lse");
  check_like(lse_b, {B, H, T}, "attention_merge", "lse_b");
  kernels::attention_merge(out.data<float>(), lse.data<float>(), out_b.data<float>(), lse_b.data<float>(), B, T, H,
                           hd, stream_);
}

void CudaOps::swiglu_forward(Tensor& h, const Tensor& g, const Tensor& u) {
  same_numel(h, g, "swiglu_forward");
  same_numel(g, u, "swiglu_forward");
  kernels::swiglu_forward(ptr(h, "swiglu_forward"), cptr(g, "swiglu_forward"), cptr(u, "swiglu_forward"), h.numel(),
                          stream_);
}

void CudaOps::swiglu_backward(Tensor& dg, Tensor& du, const Tensor& dh, const Tensor& g, const Tensor& u) {
  same_numel(dg, g, "swiglu_backward");
  same_numel(du, g, "swiglu_backward");
  same_numel(dh, g, "swiglu_backward");
  same_numel(u, g, "swiglu_backward");
  kernels::swiglu_backward(ptr(dg, "swiglu_backward"), ptr(du, "swiglu_backward"), cptr(dh, "swiglu_backward"),
                           cptr(g, "swiglu_backward"), cptr(u, "swiglu_backward"), g.numel(), stream_);
}

void CudaOps::softmax_rows(Tensor& y, const Tensor& x) {
  same_numel(y, x, "softmax_rows");
  const std::int64_t n = rows_of(x, "softmax_rows"), c = cols_of(x);
  rows_of(y, "softmax_rows", c);
  kernels::softmax_rows(y.data<float>(), x.data<float>(), n, c, stream_);
}

void CudaOps::cross_entropy(Tensor& loss, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                            float grad_scale) {
  same_numel(dlogits, logits, "cross_entropy");
  const std::int64_t n = rows_of(logits, "cross_entropy"), v = cols_of(logits);
  rows_of(dlogits, "cross_entropy", v);
  check_f32(loss, "cross_entropy");
  FIVEFOLD_CHECK(loss.numel() == n, "cross_entropy: loss ", loss.str(), " needs one value per row (", n, ")");
  kernels::cross_entropy(loss.data<float>(), dlogits.data<float>(), logits.data<float>(),
                         index_ptr(targets, n, "cross_entropy"), n, v, grad_scale, stream_);
}

void CudaOps::adamw_step(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, float lr, float beta1, float beta2,
                         float eps, float weight_decay, int step) {
  FIVEFOLD_CHECK(step >= 1, "adamw_step: step counts from 1 (got ", step, ")");
  same_numel(p, g, "adamw_step");
  same_numel(p, m, "adamw_step");
  same_numel(p, v, "adamw_step");
  // The scalars exactly as EigenOps computes them: bias corrections in double, rounded once.
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), step);
  const kernels::AdamWScalars s{1.0f - lr * weight_decay, beta1, beta2, 1.0f - beta1, 1.0f - beta2,
                                static_cast<float>(lr / bc1), static_cast<float>(std::sqrt(bc2)), eps};
  kernels::adamw_step(ptr(p, "adamw_step"), cptr(g, "adamw_step"), ptr(m, "adamw_step"), ptr(v, "adamw_step"),
                      p.numel(), s, stream_);
}

}  // namespace fivefold
