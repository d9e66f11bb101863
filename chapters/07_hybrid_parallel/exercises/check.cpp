// SPDX-License-Identifier: MIT
// The exercise checks: layouts of 1..24 ranks with several orders, every rank, and for
// exercise 2 every one of the 31 sets of axes, compared with ProcessGrid.
#include "chapters/07_hybrid_parallel/exercises/check.hpp"

#include <cstdio>
#include <string>

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

int verdict(const char* what, const std::string& problem, const char* hint) {
  std::printf("exercise %s: %s\n", what, problem.empty() ? "PASSED" : "FAILED");
  if (!problem.empty()) std::printf("  %s\n  hint: %s\n", problem.c_str(), hint);
  return problem.empty() ? 0 : 1;
}

}  // namespace

int rank_at(const AxisArray& c, const ProcessGrid& grid) { return grid.rank_of(c); }

int check_coords(CoordsFn fn) {
  for (const AxisArray& sizes : kLayouts) {
    int world = 1;
    for (int s : sizes) world *= s;
    for (const std::string& order : kOrders) {
      const ProcessGrid grid(sizes, order, world);
      for (int r = 0; r < world; ++r) {
        const AxisArray got = fn(r, sizes, grid.order()), want = grid.coords(r);
        if (got != want)
          return verdict("coordinates", grid.describe() + ": rank " + std::to_string(r) + " -> " + show(got) +
                                            ", expected " + show(want),
                         "take the lowest digit first: the leftmost axis of the order has stride 1");
      }
    }
  }
  return verdict("coordinates", "", "");
}

int check_group(GroupFn fn) {
  for (const AxisArray& sizes : kLayouts) {
    int world = 1;
    for (int s : sizes) world *= s;
    for (const std::string& order : kOrders) {
      const ProcessGrid grid(sizes, order, world);
      for (const AxisSet& s : AxisSet::all())
        for (int r = 0; r < world; ++r) {
          const std::vector<int> got = fn(r, s, grid), want = grid.group_of(r, s);
          if (got != want)
            return verdict("groups", grid.describe() + ": the " + s.name() + " group of rank " + std::to_string(r) +
                                         " is " + show(got) + ", expected " + show(want),
                           "keep the coordinates on the axes NOT in S; count through the axes of S leftmost-fastest");
        }
    }
  }
  return verdict("groups", "", "");
}

}  // namespace fivefold::ch07
