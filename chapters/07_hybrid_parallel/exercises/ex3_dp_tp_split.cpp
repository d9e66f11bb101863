// SPDX-License-Identifier: MIT
// Exercise 3: the two communicators of DP x TP (step 3). On a dp x tp grid with tp varying
// fastest, rank r has coordinates t = r % tp and d = r / tp. Its TP group is the ranks with the
// same d (same rows of the batch, different shards); its DP group is the ranks with the same t
// (same shard, different rows). Communicator::split(color, key, name) puts ranks with equal
// color in one group, ordered by key. Fill in the EXERCISE lines, then build and run:
//   cmake --build build/cpu --target ch07_ex3_dp_tp_split && mpirun -np 4 build/cpu/bin/ch07_ex3_dp_tp_split
// It prints PASSED when, on every rank, both communicators hold the right ranks in the right
// order and one DP x TP training step on them gives the serial model's gradients.
#include "chapters/07_hybrid_parallel/exercises/check_dp_tp.hpp"

using namespace fivefold;

ch07::DpTpComms split_by_hand(Communicator& world, int tp) {
  const int r = world.rank();
  ch07::DpTpComms c;
  // EXERCISE: the TP group of r (replace color and key).
  c.tp = world.split(/*color=*/0, /*key=*/r, "tp");
  // EXERCISE: the DP group of r (replace color and key).
  c.dp = world.split(/*color=*/0, /*key=*/r, "dp");
  (void)tp;
  return c;
}

int main(int argc, char** argv) { return ch07::check_dp_tp_split(argc, argv, split_by_hand); }
