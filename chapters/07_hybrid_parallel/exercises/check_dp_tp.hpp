// SPDX-License-Identifier: MIT
/// @file check_dp_tp.hpp
/// @brief The check of chapter 07's exercise 3 (the tp and dp communicators of a dp x tp grid),
/// run on your function or on the chapter library's split_dp_tp (the solution), under MPI.
#pragma once

#include "chapters/07_hybrid_parallel/dp_tp.hpp"

namespace fivefold::ch07 {

/// The routine of exercise 3 (see split_dp_tp in dp_tp.hpp).
using SplitDpTpFn = DpTpComms (*)(Communicator& world, int tp);

/// On the job's ranks with tp = 2 (1 on an odd world): checks that @p fn's communicators have
/// the right sizes, members and member order (an all_gather of world ranks over each, against
/// the groups computed here), then trains one step of DP x TP on them and compares every shard's
/// gradient with the serial model's. Rank 0 prints PASSED or FAILED with each rank's first
/// problem and a hint; returns 0 only when every rank passed.
int check_dp_tp_split(int argc, char** argv, SplitDpTpFn fn);

}  // namespace fivefold::ch07
