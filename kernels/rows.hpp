// SPDX-License-Identifier: MIT
/// @file rows.hpp
/// @brief Launch declarations of the row kernels: RMSNorm, softmax, cross-entropy, row dot
/// products and the sum of squares (fp32, contiguous rows, device pointers).
///
/// One block per row, reducing in fp32 (double for sum_squares) with the fixed-order block
/// reductions of reduce.cuh, so results are identical run to run. They differ from the CPU
/// reference only by the order of each row's sum (relative error ~1e-7). Every launch is
/// asynchronous on @p stream and throws fivefold::Error if it fails. Index tensors (targets)
/// are not range-checked on the GPU (that would need a host sync): a row with an
/// out-of-range target gets NaN loss and gradient, so the mistake shows in the loss.
#pragma once

#include <cstdint>

namespace fivefold::kernels {

/// RMSNorm forward over @p n rows of @p c: rstd[i] = 1/sqrt(mean_j x^2 + eps),
/// y = x * rstd[i] * w[j].
void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, std::int64_t n, std::int64_t c,
                     float eps, void* stream);

/// Scratch floats rmsnorm_backward needs for @p n rows of @p c (the per-chunk dw partials).
std::int64_t rmsnorm_backward_scratch(std::int64_t n, std::int64_t c);

/// RMSNorm backward: dx overwritten, dw accumulates (+=) sum_i dy * x * rstd[i]; the column
/// sums run over fixed row chunks, then over the chunks in order (deterministic, no atomics).
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                      std::int64_t n, std::int64_t c, float* scratch, void* stream);

/// y[i, :] = softmax(x[i, :]) over @p n rows of @p c (max-subtracted); y may alias x.
void softmax_rows(float* y, const float* x, std::int64_t n, std::int64_t c, void* stream);

/// Softmax cross-entropy over @p n rows of @p v: loss[i] = logsumexp - x[i, t_i];
/// d = (softmax - onehot) * grad_scale; d may alias x.
void cross_entropy(float* loss, float* d, const float* x, const std::int32_t* targets, std::int64_t n,
                   std::int64_t v, float grad_scale, void* stream);

/// out[i] = sum_j a[i, j] * b[i, j] over @p n rows of @p c.
void row_dot(float* out, const float* a, const float* b, std::int64_t n, std::int64_t c, void* stream);

/// Doubles of scratch sum_squares needs for @p n elements.
std::int64_t sum_squares_scratch(std::int64_t n);

/// Sum of x[i]^2 accumulated in double, copied to the host (waits for the stream).
double sum_squares(const float* x, std::int64_t n, double* scratch, void* stream);

}  // namespace fivefold::kernels
