// SPDX-License-Identifier: MIT
/// @file check.hpp
/// @brief The checks the chapter 00 exercises run: a routine (yours, or the chapter library's
/// solution) on a buffer whose length does not divide by the world size, against the exact sum.
#pragma once

#include "backends/communicator.hpp"
#include "backends/ops.hpp"

namespace fivefold::ch00 {

/// A reduce-scatter phase: afterwards chunk rank() of @p buf holds the sum over ranks of that
/// chunk. @p scratch holds one chunk (ring_scratch).
using ReduceScatterFn = void (*)(Communicator& comm, Ops& ops, Tensor& buf, Tensor& scratch);
/// An all-gather phase: on entry chunk rank() of @p buf is this rank's piece; afterwards all are.
using AllGatherFn = void (*)(Communicator& comm, Tensor& buf);

/// Runs @p fn under MPI on integer-valued data (exact sums) and checks chunk rank() on every
/// rank; prints PASSED or what went wrong on rank 0. Returns 0 only if every rank passed.
int check_reduce_scatter(int argc, char** argv, ReduceScatterFn fn);
/// Runs @p fn under MPI and checks every chunk on every rank; returns 0 only if all passed.
int check_all_gather(int argc, char** argv, AllGatherFn fn);

}  // namespace fivefold::ch00
