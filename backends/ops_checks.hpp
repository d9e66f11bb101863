// SPDX-License-Identifier: MIT
/// @file ops_checks.hpp
/// @brief Argument checks shared by every Ops implementation (Eigen and CUDA), so both reject
/// the same bad calls with the same message.
#pragma once

#include <cstdint>
#include <utility>

#include "common/check.hpp"
#include "common/tensor.hpp"

namespace fivefold::ops_checks {

/// Throws when @p a and @p b differ in element count (message names @p op and both tensors).
inline void same_numel(const Tensor& a, const Tensor& b, const char* op) {
  FIVEFOLD_CHECK(a.numel() == b.numel(), op, ": ", a.str(), " and ", b.str(), " differ in size");
}

/// The 2-D matrix view of a tensor: rows = product of the leading dimensions (not numel / cols,
/// which is undefined when cols == 0: A [3, 0] is a 3 x 0 matrix), cols = the last dimension.
inline std::pair<std::int64_t, std::int64_t> as_matrix(const Tensor& t) {
  if (t.ndim() == 0) return {1, 1};
  std::int64_t rows = 1;
  for (int i = 0; i + 1 < t.ndim(); ++i) rows *= t.shape()[i];
  return {rows, t.dim(-1)};
}

/// True when the memory of @p a and @p b overlaps (GEMM must not write into its inputs).
inline bool overlaps(const Tensor& a, const Tensor& b) {
  if (a.nbytes() == 0 || b.nbytes() == 0) return false;
  const char* pa = static_cast<const char*>(a.raw());
  const char* pb = static_cast<const char*>(b.raw());
  return pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

}  // namespace fivefold::ops_checks
