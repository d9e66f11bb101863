// SPDX-License-Identifier: MIT
/// @file elementwise.hpp
/// @brief Launch declarations of the elementwise kernels (fp32, contiguous, device pointers).
///
/// Plain C++: pointers, element counts and the CUDA stream as `void*`, so host code compiled
/// without nvcc can call them. Every launch is asynchronous on @p stream and throws
/// fivefold::Error if the launch fails. Results match the CPU (Eigen) reference bitwise: the
/// kernels round every product and sum separately, as the CPU does.
#pragma once

#include <cstdint>

namespace fivefold::kernels {

/// x[i] = value for i < n.
void fill(float* x, float value, std::int64_t n, void* stream);
/// y[i] = a[i] + b[i] (y may alias a or b).
void add(float* y, const float* a, const float* b, std::int64_t n, void* stream);
/// y[i] = max(a[i], b[i]) (y may alias a or b).
void maximum(float* y, const float* a, const float* b, std::int64_t n, void* stream);
/// y[i] += alpha * x[i].
void axpy(float* y, float alpha, const float* x, std::int64_t n, void* stream);
/// x[i] *= alpha.
void scale(float* x, float alpha, std::int64_t n, void* stream);

}  // namespace fivefold::kernels
