// SPDX-License-Identifier: MIT
/// @file check.hpp
/// @brief The checks the chapter 06 exercises run on a routine (yours, or the solution): the
/// dispatch permutation (against the chapter's dispatch_plan on many routings) and the count
/// exchange (under MPI, against every rank's counts). Each check also answers --hint 1 / --hint 2.
#pragma once

#include <cstdint>
#include <vector>

#include "chapters/exercise.hpp"

namespace fivefold::ch06 {

/// Exercise 1: from each token's top-k experts (@p choice [tokens, k]) and whether each
/// assignment was kept (@p kept [tokens, k]), the send buffer's rows (@p rows: the token each
/// row carries) and how many rows go to each of the @p ep ranks (@p rows_to).
using DispatchFn = void (*)(const std::vector<std::int32_t>& choice, const std::vector<std::uint8_t>& kept,
                            std::int64_t tokens, int topk, int experts, int ep, std::vector<std::int32_t>& rows,
                            std::vector<std::int64_t>& rows_to);
/// Exercise 2: from this rank's rows per expert (all E), exchanged over @p ep: for each source
/// rank i and local expert e, the rows that arrive (index i * E/ep + e).
using CountExchangeFn = std::vector<std::int64_t> (*)(Communicator& ep, Ops& ops, const std::vector<std::int64_t>& per_expert);

/// Routes random router probabilities (several E, k, ep, capacities) and compares @p fn's rows
/// and rows_to with the chapter's dispatch_plan. Rank 0 prints the verdict.
int check_dispatch(int argc, char** argv, DispatchFn fn);
/// Every rank makes up its rows per expert; @p fn's result is compared with what the other ranks
/// sent (gathered uncounted), and the exchange must be one all_to_all of E int32 per rank. Rank 0
/// prints the verdict.
int check_count_exchange(int argc, char** argv, CountExchangeFn fn);

}  // namespace fivefold::ch06
