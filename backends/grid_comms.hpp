// SPDX-License-Identifier: MIT
/// @file grid_comms.hpp
/// @brief GridComms: one Communicator per requested set of axes of a ProcessGrid, built with
/// Communicator::split on the world (MPI_Comm_split or ncclCommSplit underneath).
///
/// The split of set S uses color = the rank's S-group index and key = its group-local rank
/// (ProcessGrid::group_index / group_rank), so communicator rank i of a group is member i of
/// ProcessGrid::group_of(). Each communicator's counters are kept under the set's canonical
/// name ("tp", "dp", "tp-pp", ...). World rank r must be grid rank r.
///
/// Usage:
///   ProcessGrid grid({2, 1, 1, 2, 4}, "tp-sp-ep-dp-pp", world.size());
///   GridComms comms(world, grid, {AxisSet{Axis::tp}, AxisSet{Axis::dp}, AxisSet{Axis::tp, Axis::pp}});
///   comms.get(AxisSet{Axis::tp}).all_reduce(x);   // or comms.get("tp")
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/communicator.hpp"
#include "common/process_grid.hpp"

namespace fivefold {

/// The communicators of a process grid's groups (see the file comment).
class GridComms {
 public:
  /// Splits @p world once per set in @p sets, in that order (collective: every rank of the
  /// world passes the same sets). Throws UsageError when world.size() != grid.world_size(),
  /// and Error when a communicator's size differs from its group's (a broken split).
  GridComms(Communicator& world, const ProcessGrid& grid, const std::vector<AxisSet>& sets);

  /// The communicator of this rank's S-group (throws Error when S was not requested).
  Communicator& get(const AxisSet& s) const;
  /// The communicator of the set called @p name ("tp", "tp-pp", "pp-tp", "cp", ...).
  Communicator& get(const std::string& name) const { return get(AxisSet::parse(name)); }
  /// True when the communicator of @p s was built.
  bool has(const AxisSet& s) const { return comms_.count(s) != 0; }
  /// The sets built, in the order they were requested.
  const std::vector<AxisSet>& sets() const { return sets_; }
  /// The grid the communicators follow.
  const ProcessGrid& grid() const { return grid_; }

 private:
  ProcessGrid grid_;
  std::vector<AxisSet> sets_;
  std::map<AxisSet, std::unique_ptr<Communicator>> comms_;
};

/// The five single-axis sets {tp}, {sp}, {ep}, {dp}, {pp}.
std::vector<AxisSet> single_axis_sets();

}  // namespace fivefold
