// SPDX-License-Identifier: MIT
/// @file cuda_backend.hpp
/// @brief The CUDA backend: CudaOps on this rank's GPU plus a transport between ranks.
///
/// Transport: NCCL when every rank of a node has a GPU of its own; otherwise (ranks outnumber
/// GPUs, e.g. four ranks on a one-GPU workstation, which NCCL refuses) compute stays on the GPU
/// and data moves through MPI staged in host memory. FIVEFOLD_CUDA_TRANSPORT=nccl|staged in
/// the environment forces one (for tests and for comparing the two).
#pragma once

#include <string>

#include "backends/backend.hpp"

namespace fivefold {

/// How the CUDA backend moves data between ranks.
enum class CudaTransport {
  automatic,  ///< NCCL if every rank of each node has its own GPU, else staged
  nccl,       ///< NCCL, GPU to GPU (needs one GPU per rank)
  staged,     ///< MPI on host copies of the device buffers
};

/// Empty when this process can use a CUDA GPU; otherwise why not (cudaGetDeviceCount's error
/// string, or "0 CUDA devices"). Local: no MPI, no side effects.
std::string cuda_unavailable_reason();

/// Builds the CUDA backend over MPI_COMM_WORLD with the transport named by the environment
/// variable FIVEFOLD_CUDA_TRANSPORT (nccl, staged, or unset = automatic). Collective. Throws
/// UsageError on every rank when a rank has no usable GPU, the variable has a bad value, or
/// NCCL is forced where ranks share a GPU.
Backend make_cuda_backend();

/// Same with an explicit @p transport (the environment variable is not read).
Backend make_cuda_backend(CudaTransport transport);

}  // namespace fivefold
