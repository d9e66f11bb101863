// SPDX-License-Identifier: MIT
/// @file exercise.hpp
/// @brief What every chapter exercise's check shares: the graded hints (`--hint 1`: the idea and
/// the API with its header; `--hint 2`: the rule) and the verdict every rank agrees on.
#pragma once

#include <functional>
#include <string>

#include "backends/communicator.hpp"
#include "backends/ops.hpp"

namespace fivefold {

/// With `--hint 1|2` in @p argv, prints that hint (@p hint1 or @p hint2) on rank 0 and returns 0;
/// otherwise runs @p check on the CPU backend (under run_mpi_main). Any other argument is a usage
/// error (one line, exit 2).
int run_exercise(int argc, char** argv, const char* hint1, const char* hint2,
                 const std::function<int(Communicator&, Ops&)>& check);
/// Rank 0 prints "exercise <what> at n = <ranks>: PASSED|FAILED", every distinct problem of the
/// ranks (what is wrong: which rank, which element, expected vs got) and, on failure, where the
/// hints are. Collective; returns 0 only when no rank had a problem.
int verdict(Communicator& world, const std::string& what, const std::string& problem);

}  // namespace fivefold
