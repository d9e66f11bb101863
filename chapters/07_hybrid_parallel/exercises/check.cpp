// SPDX-License-Identifier: MIT
// The exercise checks: layouts of 1..24 ranks with several orders, every rank, and for
// exercise 2 every one of the 31 sets of axes, compared with ProcessGrid.
#include "chapters/07_hybrid_parallel/exercises/check.hpp"

#include <string>

#include "chapters/exercise.hpp"

namespace fivefold::ch07 {

namespace {

/// Layouts: sizes tp, sp, ep, dp, pp.
const std::vector<AxisArray> kLayouts = {{1, 1, 1, 1, 1}, {2, 1, 1, 2, 4}, {4, 1, 1, 2, 1}, {2, 3, 1, 1, 2},
                                         {2, 1, 2, 2, 1}, {1, 1, 1, 3, 2}, {3, 2, 1, 2, 1}, {2, 2, 2, 1, 3}};
const std::vector<std::string> kOrders = {"tp-sp-ep-dp-pp", "tp-sp-ep-pp-dp", "pp-dp-ep-sp-tp", "dp-tp-pp-ep-sp"};

std::string show(const AxisArray& c) {
  std::string s = "(";
  for (Axis a : kAllAxes)
    s += std::string(a == Axis::tp ? "" : ", ") + axis_name(a) + " " + std::to_string(c[static_cast<int>(a)]);
  return s + ")";
}

std::string show(const std::vector<int>& g) {
  std::string s = "[";
  for (std::size_t i = 0; i < g.size(); ++i) s += (i ? "," : "") + std::to_string(g[i]);
  return s + "]";
}

const char* const kHintCoords1 =
    "the idea and the API\n"
    "  A rank is a number written in mixed radix: one digit per axis, each digit in base that axis's\n"
    "  size, the leftmost axis of the order the lowest digit. How do you read the digits of a\n"
    "  decimal number from the lowest one up? Do the same with a different base per digit.\n"
    "  API: AxisArray, Axis (common/process_grid.hpp): c[static_cast<int>(a)] is the coordinate on a.";
const char* const kHintCoords2 =
    "the rule\n"
    "  rest = rank; for each axis a in the order: c[a] = rest % sizes[a]; rest /= sizes[a].";
const char* const kHintGroups1 =
    "the idea and the API\n"
    "  The S-group of a rank is every rank that agrees with it on the axes NOT in S. Enumerate the\n"
    "  coordinates of the axes in S (the leftmost of the order counting fastest), keep the others\n"
    "  fixed at the rank's own, and turn each coordinate vector back into a rank.\n"
    "  API: ProcessGrid::coords, ::size, ::order (common/process_grid.hpp), AxisSet::contains;\n"
    "  rank_at(c, grid) (check.hpp) turns coordinates into a rank.";
const char* const kHintGroups2 =
    "the rule\n"
    "  c = grid.coords(rank); for i = 0 .. size(S)-1: write i in mixed radix over the axes of S in\n"
    "  the grid's order (leftmost fastest) into c; push rank_at(c, grid). The list is then increasing.";

}  // namespace

int rank_at(const AxisArray& c, const ProcessGrid& grid) { return grid.rank_of(c); }

int check_coords(int argc, char** argv, CoordsFn fn) {
  return run_exercise(argc, argv, kHintCoords1, kHintCoords2, [fn](Communicator& world, Ops&) {
    return verdict(world, "coordinates", coords_problem(fn));
  });
}

std::string coords_problem(const CoordsFn& fn) {
  for (const AxisArray& sizes : kLayouts) {
    int world = 1;
    for (int s : sizes) world *= s;
    for (const std::string& order : kOrders) {
      const ProcessGrid grid(sizes, order, world);
      for (int r = 0; r < world; ++r) {
        const AxisArray got = fn(r, sizes, grid.order()), want = grid.coords(r);
        if (got != want)
          return grid.describe() + ": rank " + std::to_string(r) + " -> " + show(got) + ", expected " + show(want);
      }
    }
  }
  return "";
}

int check_group(int argc, char** argv, GroupFn fn) {
  return run_exercise(argc, argv, kHintGroups1, kHintGroups2, [fn](Communicator& world, Ops&) {
    return verdict(world, "groups", group_problem(fn));
  });
}

std::string group_problem(const GroupFn& fn) {
  for (const AxisArray& sizes : kLayouts) {
    int world = 1;
    for (int s : sizes) world *= s;
    for (const std::string& order : kOrders) {
      const ProcessGrid grid(sizes, order, world);
      for (const AxisSet& s : AxisSet::all())
        for (int r = 0; r < world; ++r) {
          const std::vector<int> got = fn(r, s, grid), want = grid.group_of(r, s);
          if (got != want)
            return grid.describe() + ": the " + s.name() + " group of rank " + std::to_string(r) + " is " + show(got) +
                   ", expected " + show(want);
        }
    }
  }
  return "";
}

}  // namespace fivefold::ch07
