// SPDX-License-Identifier: MIT
// Exercise 1: the log-sum-exp merge of two partial attentions (chapter 05, steps 3 and 6).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch05_ex1_lse_merge
//   mpirun -np 2 build/cpu/bin/ch05_ex1_lse_merge          (--hint 1, then --hint 2)
// Goal: ring attention computes, for the same queries, one partial attention per key block: an
// output out_b (the softmax-weighted values of that block's keys only) and lse_b, the log of that
// block's sum of exponentials of the scores. Your merge folds such a partial into a running one.
// Invariant: after merging every block, out and lse equal ONE attention over all the keys (lse
// -inf and out 0 for a row that no key is visible to), whatever the order and the block sizes.
// The check gives every rank a block of keys, gathers the partials, merges them in rank order with
// your function and compares with one attention over every key; it prints PASSED or the first row
// that differs.
#include <algorithm>
#include <cmath>

#include "chapters/05_sequence_parallel/exercises/check.hpp"

using namespace fivefold;

/// Folds (out_b, lse_b) into (out, lse), in place: row i is out[i*d .. i*d+d) and lse[i].
void lse_merge(std::vector<double>& out, std::vector<double>& lse, const std::vector<double>& out_b,
               const std::vector<double>& lse_b, int d) {
  for (std::size_t i = 0; i < lse.size(); ++i) {
    // EXERCISE: the merged lse of row i, and the weights of the two sides in the merged softmax.
    // EXERCISE: out[i*d + e] for every e, then lse[i].
    (void)out_b;
    (void)lse_b;
    (void)d;
  }
}

int main(int argc, char** argv) { return ch05::check_lse_merge(argc, argv, lse_merge); }
