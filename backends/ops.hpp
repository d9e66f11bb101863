// SPDX-License-Identifier: MIT
/// @file ops.hpp
/// @brief The Ops interface: the compute the layers need, on the backend's device.
///
/// Every tensor passed to an Ops method lives on device() and is fp32 unless stated. Lesson
/// code calls these and never touches Eigen or CUDA directly, so one source runs on both.
/// The Eigen implementation is the reference every other implementation is tested against.
#pragma once

#include <string>

#include "common/tensor.hpp"

namespace fivefold {

/// Compute primitives of a backend.
class Ops {
 public:
  virtual ~Ops() = default;
  /// "eigen" or "cuda".
  virtual std::string name() const = 0;
  /// Where this backend's tensors live.
  virtual Device device() const = 0;
  /// Waits for all queued work (a no-op on the CPU).
  virtual void synchronize() = 0;

  /// Uninitialised tensor on device().
  Tensor empty(Shape shape, DType dtype = DType::f32) const { return Tensor::empty(std::move(shape), dtype, device()); }
  /// Zero tensor on device().
  Tensor zeros(Shape shape, DType dtype = DType::f32) const { return Tensor::zeros(std::move(shape), dtype, device()); }
  /// Copy of @p t (any device) on device().
  Tensor upload(const Tensor& t) const { return t.to(device()); }

  /// x[i] = value.
  virtual void fill(Tensor& x, float value) = 0;
  /// y = a + b (y may alias a or b).
  virtual void add(Tensor& y, const Tensor& a, const Tensor& b) = 0;
  /// y = max(a, b) elementwise (y may alias a or b).
  virtual void maximum(Tensor& y, const Tensor& a, const Tensor& b) = 0;
  /// y += alpha * x.
  virtual void axpy(Tensor& y, float alpha, const Tensor& x) = 0;
  /// x *= alpha.
  virtual void scale(Tensor& x, float alpha) = 0;
  /// C = alpha * op(A) op(B) + beta * C, with A, B, C viewed as 2-D row-major matrices
  /// (leading dimensions flattened: A [.., K] is [M, K]); op(X) = X^T when the flag is set.
  virtual void matmul(Tensor& c, const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b,
                      float alpha = 1.0f, float beta = 0.0f) = 0;
};

}  // namespace fivefold
