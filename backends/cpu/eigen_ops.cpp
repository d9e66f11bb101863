// SPDX-License-Identifier: MIT
// EigenOps: elementwise ops as Eigen array expressions, matmul as an Eigen GEMM on row-major maps.
#include "backends/cpu/eigen_ops.hpp"
#include "backends/ops_checks.hpp"

#include <Eigen/Core>

namespace fivefold {

namespace {

using Vec = Eigen::Map<Eigen::ArrayXf>;
using CVec = Eigen::Map<const Eigen::ArrayXf>;
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Mat = Eigen::Map<RowMat>;
using CMat = Eigen::Map<const RowMat>;

void check_f32_host(const Tensor& t, const char* op) {
  FIVEFOLD_CHECK(t.dtype() == DType::f32 && t.device() == Device::host, op, ": eigen ops need f32 host tensors, got ",
                 t.str());
}

Vec vec(Tensor& t, const char* op) {
  check_f32_host(t, op);
  return Vec(t.data<float>(), t.numel());
}

CVec cvec(const Tensor& t, const char* op) {
  check_f32_host(t, op);
  return CVec(t.data<float>(), t.numel());
}

using ops_checks::as_matrix;
using ops_checks::overlaps;
using ops_checks::same_numel;

}  // namespace

void EigenOps::fill(Tensor& x, float value) { vec(x, "fill").setConstant(value); }

void EigenOps::add(Tensor& y, const Tensor& a, const Tensor& b) {
  same_numel(y, a, "add");
  same_numel(a, b, "add");
  vec(y, "add") = cvec(a, "add") + cvec(b, "add");
}

void EigenOps::maximum(Tensor& y, const Tensor& a, const Tensor& b) {
  same_numel(y, a, "maximum");
  same_numel(a, b, "maximum");
  vec(y, "maximum") = cvec(a, "maximum").max(cvec(b, "maximum"));
}

void EigenOps::axpy(Tensor& y, float alpha, const Tensor& x) {
  same_numel(y, x, "axpy");
  vec(y, "axpy") += alpha * cvec(x, "axpy");
}

void EigenOps::scale(Tensor& x, float alpha) { vec(x, "scale") *= alpha; }

void EigenOps::matmul(Tensor& c, const Tensor& a, const Tensor& b, bool ta, bool tb, float alpha, float beta) {
  check_f32_host(a, "matmul");
  check_f32_host(b, "matmul");
  check_f32_host(c, "matmul");
  const auto [ar, ac] = as_matrix(a);
  const auto [br, bc] = as_matrix(b);
  const auto [cr, cc] = as_matrix(c);
  const std::int64_t m = ta ? ac : ar, k = ta ? ar : ac;
  const std::int64_t k2 = tb ? bc : br, n = tb ? br : bc;
  FIVEFOLD_CHECK(k == k2 && cr == m && cc == n, "matmul: op(A) ", a.str(), (ta ? "^T" : ""), " x op(B) ", b.str(),
                 (tb ? "^T" : ""), " does not give C ", c.str());
  FIVEFOLD_CHECK(!overlaps(c, a) && !overlaps(c, b), "matmul: C ", c.str(),
                 " must not share memory with A or B; write into a separate tensor");
  CMat A(a.data<float>(), ar, ac);
  CMat B(b.data<float>(), br, bc);
  Mat C(c.data<float>(), cr, cc);
  if (beta == 0.0f) {
    C.setZero();
  } else if (beta != 1.0f) {
    C *= beta;
  }
  if (m == 0 || n == 0 || k == 0) return;
  if (!ta && !tb) C.noalias() += alpha * A * B;
  if (!ta && tb) C.noalias() += alpha * A * B.transpose();
  if (ta && !tb) C.noalias() += alpha * A.transpose() * B;
  if (ta && tb) C.noalias() += alpha * A.transpose() * B.transpose();
}

}  // namespace fivefold
