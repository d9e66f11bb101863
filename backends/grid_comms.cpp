// SPDX-License-Identifier: MIT
// GridComms: one split of the world per set of axes; color = group index, key = local rank.
#include "backends/grid_comms.hpp"

#include "common/check.hpp"

namespace fivefold {

GridComms::GridComms(Communicator& world, const ProcessGrid& grid, const std::vector<AxisSet>& sets)
    : grid_(grid) {
  FIVEFOLD_USAGE_CHECK(world.size() == grid.world_size(), "the grid ", grid.describe(), " does not fit a world of ",
                       world.size(), " rank(s); pick degrees whose product is ", world.size());
  const int me = world.rank();
  for (const AxisSet& s : sets) {
    FIVEFOLD_CHECK(!s.empty(), "GridComms: the empty set of axes has no communicator; request a set such as tp");
    if (has(s)) continue;  // asked twice: one communicator
    // TUTORIAL: ranks with the same color (group index) form one group, ordered by key.
    std::unique_ptr<Communicator> comm = world.split(grid.group_index(me, s), grid.group_rank(me, s), s.name());
    FIVEFOLD_CHECK(comm->size() == grid.size(s) && comm->rank() == grid.group_rank(me, s), "split of ", s.name(),
                   " gave rank ", comm->rank(), " of ", comm->size(), " on world rank ", me, "; expected rank ",
                   grid.group_rank(me, s), " of ", grid.size(s));
    comms_.emplace(s, std::move(comm));
    sets_.push_back(s);
  }
}

Communicator& GridComms::get(const AxisSet& s) const {
  const auto it = comms_.find(s);
  FIVEFOLD_CHECK(it != comms_.end(), "no communicator for axes '", s.name(),
                 "': pass this set to the GridComms constructor");
  return *it->second;
}

std::vector<AxisSet> single_axis_sets() {
  std::vector<AxisSet> out;
  for (Axis a : kAllAxes) out.push_back(AxisSet{a});
  return out;
}

}  // namespace fivefold
