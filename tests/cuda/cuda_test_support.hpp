// SPDX-License-Identifier: MIT
/// @file cuda_test_support.hpp
/// @brief Shared pieces of the CUDA tests: the skip-without-GPU check, the backends (built once
/// per process, torn down before MPI_Finalize), the Eigen reference, and comparisons.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "backends/cuda/cuda_backend.hpp"

namespace fivefold::test {

/// Empty when this machine has a usable CUDA GPU, else why not (cached).
const std::string& no_gpu_reason();

/// Skips the current test, with the reason, when there is no GPU. First line of every test.
#define FIVEFOLD_REQUIRE_GPU()                                                                  \
  do {                                                                                          \
    if (!::fivefold::test::no_gpu_reason().empty())                                             \
      GTEST_SKIP() << "no CUDA GPU on this machine (" << ::fivefold::test::no_gpu_reason()      \
                   << "); CUDA tests run on a GPU machine";                                     \
  } while (0)

/// The CUDA backend with @p transport, built on first use (collective: every rank asks in the
/// same test). nullptr when that transport is impossible here; @p why then says why.
Backend* cuda_backend(CudaTransport transport, std::string* why);

/// The reference implementation of Ops (Eigen on the host).
Ops& reference_ops();

/// Deterministic values in [-1, 1) for @p seed.
std::vector<float> random_values(std::size_t n, std::uint32_t seed);

/// ||got - want||_2 / ||want||_2 (0 when both are zero).
double rel_l2(const std::vector<float>& got, const std::vector<float>& want);

/// Name of a transport for test names ("nccl", "staged").
std::string transport_name(CudaTransport t);

}  // namespace fivefold::test

namespace fivefold {
/// Failure messages print a transport by name (GoogleTest looks this up next to the type).
inline void PrintTo(CudaTransport t, std::ostream* os) { *os << test::transport_name(t); }
}  // namespace fivefold
