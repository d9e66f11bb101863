// SPDX-License-Identifier: MIT
/// @file eigen_ops.hpp
/// @brief Ops on host memory with Eigen: the reference implementation of every op.
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
};

}  // namespace fivefold
