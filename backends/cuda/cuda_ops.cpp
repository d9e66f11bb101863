// SPDX-License-Identifier: MIT
// CudaOps: elementwise ops launch the kernels of kernels/elementwise.cu; matmul is one cuBLAS
// SGEMM. cuBLAS is column-major and our tensors are row-major, so we ask cuBLAS for C^T:
// a row-major [M, N] buffer read column-major *is* C^T [N, M], and C^T = op(B)^T op(A)^T,
// where the row-major buffers of A and B, read column-major, are already A^T and B^T.
// To add an op: a launch declaration in kernels/<family>.hpp, the kernel in the .cu file,
// and a method here that checks the tensors and launches on stream_.
#include "backends/cuda/cuda_ops.hpp"

#include <climits>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/cuda_context.hpp"
#include "kernels/elementwise.hpp"

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

void same_numel(const Tensor& a, const Tensor& b, const char* op) {
  FIVEFOLD_CHECK(a.numel() == b.numel(), op, ": ", a.str(), " and ", b.str(), " differ in size");
}

// The 2-D matrix view of a tensor: all leading dimensions flattened into rows.
std::pair<std::int64_t, std::int64_t> as_matrix(const Tensor& t) {
  const std::int64_t cols = t.ndim() == 0 ? 1 : t.dim(-1);
  return {cols == 0 ? 0 : t.numel() / cols, cols};
}

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

// ---- Model ops: not implemented on CUDA yet. Each one becomes a kernel family in kernels/
// (declared in kernels/<family>.hpp) and a method here, checked by tests/cuda against EigenOps.
namespace {
[[noreturn]] void not_yet(const char* op) {
  throw Error(std::string("cuda ops: ") + op + " is not implemented on CUDA yet; run with --backend cpu");
}
}  // namespace

void CudaOps::mul(Tensor&, const Tensor&, const Tensor&) { not_yet("mul"); }
double CudaOps::sum_squares(const Tensor&) { not_yet("sum_squares"); }
void CudaOps::row_dot(Tensor&, const Tensor&, const Tensor&) { not_yet("row_dot"); }
void CudaOps::gather_rows(Tensor&, const Tensor&, const Tensor&, const Tensor&) { not_yet("gather_rows"); }
void CudaOps::scatter_add_rows(Tensor&, const Tensor&, const Tensor&, const Tensor&) { not_yet("scatter_add_rows"); }
void CudaOps::rmsnorm_forward(Tensor&, Tensor&, const Tensor&, const Tensor&, float) { not_yet("rmsnorm_forward"); }
void CudaOps::rmsnorm_backward(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  not_yet("rmsnorm_backward");
}
void CudaOps::rope(Tensor&, const Tensor&, float, bool) { not_yet("rope"); }
void CudaOps::attention_forward(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                const Tensor&) {
  not_yet("attention_forward");
}
void CudaOps::attention_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  not_yet("attention_backward");
}
void CudaOps::attention_merge(Tensor&, Tensor&, const Tensor&, const Tensor&) { not_yet("attention_merge"); }
void CudaOps::swiglu_forward(Tensor&, const Tensor&, const Tensor&) { not_yet("swiglu_forward"); }
void CudaOps::swiglu_backward(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  not_yet("swiglu_backward");
}
void CudaOps::softmax_rows(Tensor&, const Tensor&) { not_yet("softmax_rows"); }
void CudaOps::cross_entropy(Tensor&, Tensor&, const Tensor&, const Tensor&, float) { not_yet("cross_entropy"); }
void CudaOps::adamw_step(Tensor&, const Tensor&, Tensor&, Tensor&, float, float, float, float, float, int) {
  not_yet("adamw_step");
}

}  // namespace fivefold
