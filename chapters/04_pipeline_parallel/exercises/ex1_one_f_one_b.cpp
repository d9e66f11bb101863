// SPDX-License-Identifier: MIT
// Exercise 1: 1F1B's order of passes on one rank (chapter 04, step 3).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch04_ex1_one_f_one_b
//   mpirun --oversubscribe -np 2 build/cpu/bin/ch04_ex1_one_f_one_b        (try -np 1, 3, 4 too)
//   build/cpu/bin/ch04_ex1_one_f_one_b --hint 1            (then --hint 2)
// The check builds 1F1B schedules from your orders for several p and m (m < p too), replays them
// on paper (no hang, every pass once, min(p-r, m) activations held, the closed-form bubble), then
// trains a tiny model on a pipeline of -np stages with them and compares the losses with the
// serial model's.
#include "chapters/04_pipeline_parallel/exercises/check.hpp"

using namespace fivefold;

/// Rank @p r's passes of one 1F1B step: p stages, m microbatches, one chunk per rank, whole backwards.
std::vector<ch04::Action> one_f_one_b_order(int p, int m, int r) {
  std::vector<ch04::Action> order;
  // EXERCISE: the warm-up length: as many forwards as stage r can run before the backward of
  //           microbatch 0 can reach it (it depends on how many stages lie after r), never more than m.
  const int warmup = 0;  // EXERCISE: replace 0
  for (int i = 0; i < warmup; ++i) order.push_back({'F', i, r});  // warm-up
  for (int i = 0; i < m - warmup; ++i) {
    // EXERCISE: the steady state: one forward of the next microbatch not yet started, then one
    //           backward of the oldest microbatch whose backward has not run (vstage = r).
  }
  // EXERCISE: the cool-down: the backwards still owed, oldest microbatch first.
  return order;
}

int main(int argc, char** argv) { return ch04::check_one_f_one_b(argc, argv, one_f_one_b_order); }
