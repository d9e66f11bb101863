// SPDX-License-Identifier: MIT
// The solutions of exercises 1 and 2, run through the same checks: `ch07_ex_solution coords`
// or `ch07_ex_solution groups`.
#include <cstring>

#include "chapters/07_hybrid_parallel/exercises/check.hpp"

using namespace fivefold;

namespace {

AxisArray coords_by_hand(int rank, const AxisArray& sizes, const std::vector<Axis>& order) {
  AxisArray c{};
  for (Axis a : order) {
    const int i = static_cast<int>(a);
    c[i] = rank % sizes[i];  // the lowest digit...
    rank /= sizes[i];        // ...then drop it
  }
  return c;
}

std::vector<int> group_by_hand(int rank, const AxisSet& s, const ProcessGrid& grid) {
  const AxisArray mine = grid.coords(rank);
  std::vector<int> members;
  for (int local = 0; local < grid.size(s); ++local) {
    AxisArray c = mine;
    int rest = local;
    for (Axis a : grid.order()) {
      if (!s.contains(a)) continue;
      c[static_cast<int>(a)] = rest % grid.size(a);
      rest /= grid.size(a);
    }
    members.push_back(ch07::rank_at(c, grid));
  }
  return members;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "coords") == 0) return ch07::check_coords(argc - 1, argv + 1, coords_by_hand);
  if (argc >= 2 && std::strcmp(argv[1], "groups") == 0) return ch07::check_group(argc - 1, argv + 1, group_by_hand);
  return 2;
}
