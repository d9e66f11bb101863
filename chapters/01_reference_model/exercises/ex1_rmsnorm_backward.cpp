// SPDX-License-Identifier: MIT
// Exercise 1: RMSNorm's backward, by hand (chapter 01, step 3).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch01_ex1_rmsnorm_backward
//   build/cpu/bin/ch01_ex1_rmsnorm_backward
// It prints PASSED when dx matches central differences (in double) of sum(dy * rmsnorm(x)), dw
// matches sum over rows of dy * xhat, and dx matches the backend's Ops::rmsnorm_backward.
// Forward, per row: r = 1 / sqrt(mean_j x_j^2 + eps), xhat_j = x_j r, y_j = xhat_j w_j.
// --hint 1 gives the idea, --hint 2 the rule. The chapter's own version and its derivation are in
// ../rmsnorm_by_hand.cpp: read it after you are done.
#include "chapters/01_reference_model/exercises/check.hpp"

using namespace fivefold;

void exercise_rmsnorm_backward(const std::vector<float>& x, const std::vector<float>& w,
                               const std::vector<float>& rstd, const std::vector<float>& dy, std::int64_t n,
                               std::int64_t c, std::vector<float>& dx, std::vector<float>& dw) {
  dx.assign(static_cast<std::size_t>(n * c), 0.0f);
  dw.resize(static_cast<std::size_t>(c), 0.0f);
  for (std::int64_t i = 0; i < n; ++i) {
    const float r = rstd[i];
    double dot = 0.0;
    // EXERCISE: a sum over the row j = 0..c-1 that the projection below needs (see --hint 1).
    const float mean = static_cast<float>(dot / static_cast<double>(c));
    for (std::int64_t j = 0; j < c; ++j) {
      [[maybe_unused]] const float xhat = x[i * c + j] * r;
      // EXERCISE: this treats r as a constant, but r depends on every x_k of the row: correct it.
      dx[i * c + j] = r * dy[i * c + j] * w[j] + 0.0f * mean;
      // EXERCISE: the gain's gradient: dw[j] += dy * (what multiplies w[j] in y).
    }
  }
}

int main(int argc, char** argv) { return ch01::check_rmsnorm_backward(argc, argv, exercise_rmsnorm_backward); }
