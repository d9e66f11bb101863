// SPDX-License-Identifier: MIT
// Exercise 1: a rank's coordinates by hand. A rank is a mixed-radix number: its digits are the
// coordinates, the leftmost axis of the order is the lowest digit (stride 1). Fill in the
// EXERCISE lines, then build and run:
//   cmake --build build/cpu --target ch07_ex1_coords && build/cpu/bin/ch07_ex1_coords
// It prints PASSED when every rank of every test layout and order matches ProcessGrid, else the
// first rank that differs; --hint 1 gives the idea, --hint 2 the rule.
// Warm-up on paper: tp 2, pp 4, dp 2, order tp-sp-ep-dp-pp — what are the coordinates of rank 11?
#include "chapters/07_hybrid_parallel/exercises/check.hpp"

using namespace fivefold;

AxisArray coords_by_hand(int rank, const AxisArray& sizes, const std::vector<Axis>& order) {
  AxisArray c{};  // indexed by Axis: c[0] = tp, ..., c[4] = pp
  for (Axis a : order) {
    const int i = static_cast<int>(a);
    // EXERCISE: the coordinate of rank along axis a (a has stride 1 when it is the first of the
    //           order; each later axis's stride is the product of the sizes before it).
    c[i] = 0;
    (void)sizes;
  }
  return c;
}

int main(int argc, char** argv) { return ch07::check_coords(argc, argv, coords_by_hand); }
