// SPDX-License-Identifier: MIT
/// @file cuda_check.hpp
/// @brief FIVEFOLD_CUDA_CHECK: turns a failed CUDA, cuBLAS or NCCL call into a fivefold::Error.
///
/// Internal to backends/cuda (.cpp files only; it includes the CUDA, cuBLAS and NCCL headers).
/// The message names the call as written in the source, the library's error string and the
/// place, e.g. `cudaMalloc(&p, bytes) failed: out of memory (backends/cuda/cuda_backend.cpp:42)`.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <nccl.h>

#include "common/check.hpp"

namespace fivefold::cuda_detail {

/// Throws Error for a failed CUDA runtime call.
inline void check(cudaError_t rc, const char* call, const char* file, int line) {
  if (rc == cudaSuccess) return;
  throw Error(detail::concat(call, " failed: ", cudaGetErrorString(rc), " (", file, ":", line, ")"));
}

/// Throws Error for a failed cuBLAS call.
inline void check(cublasStatus_t rc, const char* call, const char* file, int line) {
  if (rc == CUBLAS_STATUS_SUCCESS) return;
  throw Error(detail::concat(call, " failed: ", cublasGetStatusString(rc), " (", file, ":", line, ")"));
}

/// Throws Error for a failed NCCL call (ncclInProgress counts as failure: we use blocking comms).
inline void check(ncclResult_t rc, const char* call, const char* file, int line) {
  if (rc == ncclSuccess) return;
  throw Error(detail::concat(call, " failed: ", ncclGetErrorString(rc), " (", file, ":", line,
                             "); NCCL_DEBUG=WARN in the environment prints NCCL's own reason"));
}

}  // namespace fivefold::cuda_detail

/// Evaluates a CUDA / cuBLAS / NCCL call and throws fivefold::Error naming it if it failed.
#define FIVEFOLD_CUDA_CHECK(call) ::fivefold::cuda_detail::check((call), #call, __FILE__, __LINE__)
