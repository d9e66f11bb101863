// SPDX-License-Identifier: MIT
/// @file reduce.cuh
/// @brief Deterministic block reductions for the row kernels (included by .cu files only).
///
/// A block reduces its threads' partial values in a fixed order: a warp-shuffle butterfly
/// inside each warp, then warp 0 combines the per-warp results in warp order. For a given block
/// size the order never changes, so a kernel gives the same bits run after run (no atomics).
/// IEEE addition is commutative, so every lane of a butterfly ends with the same bits.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fivefold::kernels {

/// Threads per block of a row kernel for rows of @p cols: a multiple of 32 in [32, 256].
inline int row_threads(std::int64_t cols) {
  const std::int64_t t = (cols + 31) / 32 * 32;
  return static_cast<int>(t < 32 ? 32 : (t > 256 ? 256 : t));
}

/// Sum over the 32 lanes of a warp; every lane gets the result.
template <typename T>
__device__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

/// Maximum over the 32 lanes of a warp; every lane gets the result.
__device__ inline float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

/// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the
/// result. @p buf is shared memory of at least 33 elements; the call ends with a barrier, so
/// @p buf may be reused at once.
template <typename T>
__device__ T block_sum(T v, T* buf) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  if (lane == 0) buf[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = lane < warps ? buf[lane] : T(0);
    w = warp_sum(w);
    if (lane == 0) buf[32] = w;
  }
  __syncthreads();
  const T out = buf[32];
  __syncthreads();
  return out;
}

/// Maximum over the block (see block_sum); -inf for a block of -inf.
__device__ inline float block_max(float v, float* buf) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  if (lane == 0) buf[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float w = lane < warps ? buf[lane] : -INFINITY;
    w = warp_max(w);
    if (lane == 0) buf[32] = w;
  }
  __syncthreads();
  const float out = buf[32];
  __syncthreads();
  return out;
}

}  // namespace fivefold::kernels
