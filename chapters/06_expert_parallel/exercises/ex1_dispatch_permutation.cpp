// SPDX-License-Identifier: MIT
// Exercise 1: the dispatch permutation (chapter 06, step 2).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch06_ex1_dispatch_permutation
//   build/cpu/bin/ch06_ex1_dispatch_permutation             (--hint 1, then --hint 2)
// Goal: before the all-to-all, a rank lays out the rows it sends: one row per kept assignment
// (token i's j-th choice of expert), so that each destination rank's rows are contiguous and, in
// them, each of its experts' rows are contiguous, experts in increasing order, tokens in
// increasing order inside an expert. Experts e .. e + E/ep - 1 live on rank e / (E/ep).
// Invariant: every kept assignment appears exactly once; dropped ones (kept = 0) not at all;
// rows_to[r] is the number of rows for rank r. The check routes random tokens and compares your
// rows with the chapter's plan, naming the first row that differs.
#include <cstdint>
#include <vector>

#include "chapters/06_expert_parallel/exercises/check.hpp"

using namespace fivefold;

/// choice, kept: [tokens, topk]. rows: the token of each send row; rows_to: rows per rank.
void dispatch_permutation(const std::vector<std::int32_t>& choice, const std::vector<std::uint8_t>& kept,
                          std::int64_t tokens, int topk, int experts, int ep, std::vector<std::int32_t>& rows,
                          std::vector<std::int64_t>& rows_to) {
  rows.clear();
  rows_to.assign(ep, 0);
  // EXERCISE: append the token of every kept assignment to rows, in the order of the goal above.
  // EXERCISE: count the rows of each destination rank into rows_to.
  (void)choice;
  (void)kept;
  (void)tokens;
  (void)topk;
  (void)experts;
}

int main(int argc, char** argv) { return ch06::check_dispatch(argc, argv, dispatch_permutation); }
