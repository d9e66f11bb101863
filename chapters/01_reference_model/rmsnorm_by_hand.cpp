// SPDX-License-Identifier: MIT
// RMSNorm by hand (see rmsnorm_by_hand.hpp). Derivation, per row (drop the row index):
//   r = (mean_j x_j^2 + eps)^(-1/2),  xhat_j = x_j r,  y_j = xhat_j w_j.
//   dr/dx_k = -r^3 x_k / C, so d xhat_j / d x_k = r [j == k] - x_j r^3 x_k / C.
//   dx_k = sum_j dy_j w_j d xhat_j / d x_k = r dy_k w_k - (r / C) xhat_k sum_j dy_j w_j xhat_j
//        = r (g_k - xhat_k mean_j(g_j xhat_j)),  g = dy * w.
//   dw_j = sum over rows of dy_j xhat_j.
#include "chapters/01_reference_model/rmsnorm_by_hand.hpp"

#include <cmath>

namespace fivefold::ch01 {

void rmsnorm_forward_by_hand(const std::vector<float>& x, const std::vector<float>& w, std::int64_t n,
                             std::int64_t c, float eps, std::vector<float>& y, std::vector<float>& rstd) {
  y.assign(static_cast<std::size_t>(n * c), 0.0f);
  rstd.assign(static_cast<std::size_t>(n), 0.0f);
  for (std::int64_t i = 0; i < n; ++i) {
    double ss = 0.0;
    for (std::int64_t j = 0; j < c; ++j) ss += static_cast<double>(x[i * c + j]) * x[i * c + j];
    rstd[i] = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(c) + eps));
    for (std::int64_t j = 0; j < c; ++j) y[i * c + j] = x[i * c + j] * rstd[i] * w[j];
  }
}

void rmsnorm_backward_by_hand(const std::vector<float>& x, const std::vector<float>& w,
                              const std::vector<float>& rstd, const std::vector<float>& dy, std::int64_t n,
                              std::int64_t c, std::vector<float>& dx, std::vector<float>& dw) {
  dx.assign(static_cast<std::size_t>(n * c), 0.0f);
  dw.resize(static_cast<std::size_t>(c), 0.0f);
  for (std::int64_t i = 0; i < n; ++i) {
    const float r = rstd[i];
    double dot = 0.0;  // TUTORIAL: mean_j (dy*w)_j xhat_j: how much of dy points along xhat
    for (std::int64_t j = 0; j < c; ++j) dot += static_cast<double>(dy[i * c + j]) * w[j] * x[i * c + j] * r;
    const float mean = static_cast<float>(dot / static_cast<double>(c));
    for (std::int64_t j = 0; j < c; ++j) {
      const float xhat = x[i * c + j] * r;
      dx[i * c + j] = r * (dy[i * c + j] * w[j] - xhat * mean);  // TUTORIAL: remove that component, scale by r
      dw[j] += dy[i * c + j] * xhat;                             // the gain sees the normalised input
    }
  }
}

}  // namespace fivefold::ch01
