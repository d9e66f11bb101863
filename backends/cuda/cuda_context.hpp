// SPDX-License-Identifier: MIT
/// @file cuda_context.hpp
/// @brief The process's CUDA state (device, compute stream, cuBLAS handle), shared by the CUDA
/// allocator, CudaOps and the communicators.
///
/// One rank drives one device. Every kernel, cuBLAS call and host<->device copy is queued on
/// the one compute stream, so they run in program order; a communicator's own stream waits for
/// the compute stream before it touches a buffer. Only forward declarations here, so that this
/// header stays free of CUDA includes.
#pragma once

#include <string>

struct CUstream_st;    // cudaStream_t is CUstream_st*
struct cublasContext;  // cublasHandle_t is cublasContext*

namespace fivefold {

/// Per-process CUDA state, created once by make_cuda_backend() and never destroyed (tensors
/// may outlive every Backend, and their memory is returned through it).
struct CudaContext {
  int device = -1;                  ///< the GPU this rank drives (local rank mod GPUs per node)
  int device_count = 0;             ///< GPUs visible to this process
  std::string device_name;          ///< e.g. "NVIDIA H100 80GB HBM3"
  CUstream_st* stream = nullptr;    ///< the compute stream
  cublasContext* cublas = nullptr;  ///< cuBLAS handle bound to the compute stream
};

/// The context; throws Error when make_cuda_backend() has not created it yet.
CudaContext& cuda_context();

}  // namespace fivefold
