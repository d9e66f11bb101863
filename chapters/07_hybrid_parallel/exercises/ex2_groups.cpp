// SPDX-License-Identifier: MIT
// Exercise 2: the group of a rank by hand. The S-group of a rank is every rank with the same
// coordinates on the axes NOT in S; member i of the group has group-local rank i, whose digits
// (leftmost-fastest in the order) are the coordinates on the axes of S. Fill in the EXERCISE
// lines, then build and run:
//   cmake --build build/cpu --target ch07_ex2_groups && build/cpu/bin/ch07_ex2_groups
// It prints PASSED when every rank of every test layout and order matches ProcessGrid.
#include "chapters/07_hybrid_parallel/exercises/check.hpp"

using namespace fivefold;

std::vector<int> group_by_hand(int rank, const AxisSet& s, const ProcessGrid& grid) {
  const AxisArray mine = grid.coords(rank);
  std::vector<int> members;
  for (int local = 0; local < grid.size(s); ++local) {
    AxisArray c = mine;  // the axes not in S keep my coordinates
    int rest = local;
    for (Axis a : grid.order()) {
      // EXERCISE: for an axis a of S, its coordinate is the next digit of `rest` (base grid.size(a)).
      (void)a;
      (void)rest;
    }
    members.push_back(ch07::rank_at(c, grid));
  }
  return members;
}

int main(int argc, char** argv) { return ch07::check_group(argc, argv, group_by_hand); }
