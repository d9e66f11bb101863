// SPDX-License-Identifier: MIT
/// @file runtime.hpp
/// @brief MPI start-up/shut-down and the error policy of every fivefold executable.
///
/// run_mpi_main() wraps a chapter's main:
/// - UsageError (bad option, impossible layout; raised on every rank alike, before any
///   communication): rank 0 prints `error: <message>`, every rank finalises MPI, exit 2.
/// - any other exception (may be on one rank only): that rank prints
///   `error (rank r): <message>` and aborts the whole job with MPI_Abort, so nothing hangs.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "backends/communicator.hpp"

namespace fivefold {

/// Initialises MPI (MPI_THREAD_FUNNELED) on construction, finalises it on destruction.
class MpiSession {
 public:
  /// Calls MPI_Init_thread unless MPI is already initialised.
  MpiSession(int& argc, char**& argv);
  /// Calls MPI_Finalize unless it already ran.
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  /// Rank in MPI_COMM_WORLD.
  static int world_rank();
  /// Size of MPI_COMM_WORLD.
  static int world_size();
};

/// Runs @p body(argc, argv) under MPI with the error policy above; returns the exit status.
int run_mpi_main(int argc, char** argv, const std::function<int(int, char**)>& body);

/// Gathers one string from every rank of @p comm to every rank (uncounted bookkeeping).
std::vector<std::string> all_gather_strings(Communicator& comm, const std::string& s);

/// Logical AND of @p ok over the ranks of @p comm (uncounted bookkeeping): a check passes only
/// when it passed everywhere.
bool all_ranks_true(Communicator& comm, bool ok);

/// The verdict of a chapter exercise run under MPI: @p problem is this rank's first problem
/// ("" when none). Rank 0 prints "exercise <what> at n = <ranks>: PASSED" or "FAILED", each
/// rank's problem, and @p hint on failure. Collective over @p world; returns the exit status
/// (0 only when every rank passed).
int exercise_verdict(Communicator& world, const std::string& what, const std::string& problem,
                     const std::string& hint);

}  // namespace fivefold
