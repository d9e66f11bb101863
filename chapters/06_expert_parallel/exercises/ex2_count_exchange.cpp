// SPDX-License-Identifier: MIT
// Exercise 2: the count exchange (chapter 06, step 2).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch06_ex2_count_exchange
//   mpirun -np 2 build/cpu/bin/ch06_ex2_count_exchange      (--hint 1, then --hint 2)
// Goal: dropless, the sizes of the rows each rank will receive depend on every other rank's
// routing. Before the all-to-allv of the rows, every rank must learn, for each source rank and
// each of its own E/ep experts, how many rows arrive. per_expert[e] is how many rows THIS rank
// has for expert e (all E experts; experts e .. e + E/ep - 1 live on rank e / (E/ep)).
// Invariant: the result at index i * E/ep + e equals what rank i has for this rank's local expert
// e; one collective call, in which each rank sends every rank only the counts of that rank's
// experts (E int32 in all). The check compares with every rank's counts and with the call's
// counters, naming the rank and expert that differ.
#include <cstdint>
#include <vector>

#include "chapters/06_expert_parallel/exercises/check.hpp"

using namespace fivefold;

std::vector<std::int64_t> count_exchange(Communicator& ep, Ops& ops, const std::vector<std::int64_t>& per_expert) {
  std::vector<std::int64_t> from(per_expert.size(), 0);
  // EXERCISE: send each rank the counts of its experts, receive every rank's counts for mine.
  // EXERCISE: read them back into from (index: source rank * E/ep + local expert).
  (void)ep;
  (void)ops;
  return from;
}

int main(int argc, char** argv) { return ch06::check_count_exchange(argc, argv, count_exchange); }
