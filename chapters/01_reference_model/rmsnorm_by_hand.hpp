// SPDX-License-Identifier: MIT
/// @file rmsnorm_by_hand.hpp
/// @brief RMSNorm forward and backward as plain loops over host vectors: the derivation of the
/// README written as code (and the solution of exercise 1). The library's Ops::rmsnorm_* do the
/// same on the backend's device; step 3 and the exercise check that they agree.
#pragma once

#include <cstdint>
#include <vector>

namespace fivefold::ch01 {

/// y[i, j] = x[i, j] * rstd[i] * w[j], rstd[i] = 1 / sqrt(mean_j x[i, j]^2 + eps). x, y [N, C]
/// row-major; w [C]; rstd [N]. Outputs are resized and overwritten.
void rmsnorm_forward_by_hand(const std::vector<float>& x, const std::vector<float>& w, std::int64_t n,
                             std::int64_t c, float eps, std::vector<float>& y, std::vector<float>& rstd);

/// The backward of rmsnorm_forward_by_hand: dx [N, C] overwritten (resized), dw [C] ACCUMULATES.
/// With xhat = x * rstd: dx = rstd * (dy*w - xhat * mean_j(dy*w*xhat)), dw += sum_i dy * xhat.
void rmsnorm_backward_by_hand(const std::vector<float>& x, const std::vector<float>& w,
                              const std::vector<float>& rstd, const std::vector<float>& dy, std::int64_t n,
                              std::int64_t c, std::vector<float>& dx, std::vector<float>& dw);

}  // namespace fivefold::ch01
