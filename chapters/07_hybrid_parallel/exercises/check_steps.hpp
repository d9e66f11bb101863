// SPDX-License-Identifier: MIT
/// @file check_steps.hpp
/// @brief The checks of chapter 07's exercises 4 and 5 (steps 6 and 7), without MPI: the
/// capacity prefix of a sequence split over a group (the group simulated, compared with a count
/// over every position), and the wire model (compared with rings and all-to-alls simulated on
/// data, counting what each rank sends, over the groups of ProcessGrid layouts and orders).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "chapters/05_sequence_parallel/sp_layout.hpp"

namespace fivefold::ch07 {

/// Exercise 4: where the capacity of this rank's segments starts. @p segs[q]: the segments of
/// rank q of the sequence group, in q's local order (ch05::local_segments for ring and zigzag);
/// @p chosen[q]: rank q's assignments per sequence, segment and expert, [b][G_q][E] with
/// G_q = segs[q].size() (what the all-gather of step 6 delivers). Returns [b][G][E] for rank
/// @p me (G = segs[me].size()): per sequence, segment of @p me and expert, the assignments to that
/// expert at positions of the same sequence before the segment's first one, on any rank
/// (nn::SequenceShare::before).
using BeforeFn = std::function<std::vector<std::int64_t>(int me, const std::vector<std::vector<ch05::Segment>>& segs,
                                                         const std::vector<std::vector<std::int64_t>>& chosen,
                                                         std::int64_t b, int experts)>;

/// Exercise 5, part 1: the bytes rank @p rank puts on the wire, per peer (world rank), for one
/// call of @p op ("all_reduce", "reduce_scatter", "all_gather", "all_to_all") in the group
/// @p members (world ranks in group order; the ring successor of members[i] is
/// members[(i + 1) % n]). @p payload is the counted payload (chapter 00's rules: the whole buffer
/// of an all-reduce, a reduce-scatter or an all-to-all; this rank's share of an all-gather).
using WireFn = std::function<std::map<int, double>(const std::vector<int>& members, int rank, const std::string& op,
                                                   double payload)>;
/// Exercise 5, part 2: of the bytes @p to (peer -> bytes) that rank @p rank sends, those that
/// leave its node, nodes being blocks of @p gpus_per_node consecutive ranks.
using AcrossFn = std::function<double(const std::map<int, double>& to, int rank, int gpus_per_node)>;

/// Checks @p fn on every rank of ring, zigzag and a made-up layout (several sp, sequences,
/// experts, random choices); prints the verdict. `--hint 1|2` in @p argv prints that hint instead.
int check_capacity_prefix(int argc, char** argv, BeforeFn fn);
/// The first rank, segment and sequence where @p fn's counts differ from a count over every
/// position ("" if none).
std::string capacity_prefix_problem(const BeforeFn& fn);

/// Checks @p wire on every rank, group (ProcessGrid layouts, orders, sets of axes) and op against
/// simulated collectives, then @p across on nodes of 1, 2, 4 and 8 ranks; prints the verdict.
int check_wire_bytes(int argc, char** argv, WireFn wire, AcrossFn across);
/// The first call where @p wire or @p across differs from the simulation ("" if none).
std::string wire_bytes_problem(const WireFn& wire, const AcrossFn& across);

}  // namespace fivefold::ch07
