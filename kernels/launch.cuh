// SPDX-License-Identifier: MIT
/// @file launch.cuh
/// @brief Shared launch helpers of the kernels (included by .cu files only).
///
/// Grid sizing for the grid-stride loops every elementwise kernel uses, and the check after a
/// launch, which turns a CUDA error into a fivefold::Error naming the kernel.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "common/check.hpp"

namespace fivefold::kernels {

/// Threads per block of the elementwise kernels.
constexpr int kBlock = 256;

/// Blocks for @p n elements with a grid-stride loop (capped; the loop covers the rest).
inline unsigned grid_for(std::int64_t n) {
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
  return static_cast<unsigned>(std::clamp<std::int64_t>(blocks, 1, 65535));
}

/// The stream behind the opaque `void*` of the launch declarations.
inline cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

/// Throws fivefold::Error if the last launch of @p kernel failed.
inline void check_launch(const char* kernel) {
  const cudaError_t err = cudaGetLastError();
  FIVEFOLD_CHECK(err == cudaSuccess, "CUDA kernel ", kernel, " failed to launch: ",
                 cudaGetErrorString(err));
}

}  // namespace fivefold::kernels
