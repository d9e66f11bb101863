// SPDX-License-Identifier: MIT
// Exercise 2: the zigzag index map (chapter 05, step 4).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch05_ex2_zigzag_map
//   build/cpu/bin/ch05_ex2_zigzag_map                      (--hint 1, then --hint 2)
// Goal: split a causal sequence of T positions over sp ranks so that every rank does the same
// attention work. Position t attends to t + 1 keys, so a rank's work is the sum of t + 1 over the
// positions it holds.
// Invariant: every position on exactly one rank, T/sp per rank, held as two runs of consecutive
// positions (two chunks of T/(2 sp)), and the same work on every rank.
// The check tries several (T, sp) and prints PASSED or what is wrong (which rank, which position).
#include <cstdint>
#include <vector>

#include "chapters/05_sequence_parallel/exercises/check.hpp"

using namespace fivefold;

/// The global positions rank r of sp holds of a sequence of T, in the order it keeps them.
std::vector<std::int64_t> zigzag_positions(std::int64_t T, int sp, int r) {
  std::vector<std::int64_t> positions;
  // EXERCISE: the chunk size, and which two chunks rank r holds.
  // EXERCISE: append the positions of both chunks, the earlier chunk first.
  (void)T;
  (void)sp;
  (void)r;
  return positions;
}

int main(int argc, char** argv) { return ch05::check_zigzag_map(argc, argv, zigzag_positions); }
