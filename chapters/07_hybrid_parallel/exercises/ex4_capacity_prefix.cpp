// SPDX-License-Identifier: MIT
// Exercise 4: the capacity of a sequence split over a group (chapter 07, step 6).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch07_ex4_capacity_prefix
//   build/cpu/bin/ch07_ex4_capacity_prefix                  (--hint 1, then --hint 2)
// Goal: an expert keeps a sequence's assignments first come first served by position, while it
// has kept fewer than cap (chapter 06). With the sequence split over sp ranks, a rank routes only
// its own segments of positions, so before its first token it must know how many assignments
// each expert received at earlier positions, held by other ranks (or by itself: under zigzag
// rank r holds chunks r and 2 sp - 1 - r). Step 6 all-gathers every rank's per-segment,
// per-expert counts over the group; from them, write the counts that start each of this rank's
// segments (nn::SequenceShare::before, which nn::apply_capacity then continues position by
// position).
// Invariant: for sequence s, segment g of rank me and expert e, the result is the number of
// assignments to e at positions of sequence s smaller than segs[me][g].start, whichever rank
// holds them. The check simulates the group (ring and zigzag at sp 2, 3, 4 and 8, a made-up
// layout; random choices of 1 to 3 sequences) and compares with a count over every position,
// naming the first rank, sequence and segment whose counts differ. The chapter's own version is
// HybridParts::share in ../hybrid.cpp: read it after you are done.
#include <cstdint>
#include <vector>

#include "chapters/07_hybrid_parallel/exercises/check_steps.hpp"

using namespace fivefold;

/// segs[q]: rank q's segments (local order); chosen[q]: its counts [b][G_q][E]. Returns [b][G][E]
/// for rank me.
std::vector<std::int64_t> before_by_hand(int me, const std::vector<std::vector<ch05::Segment>>& segs,
                                         const std::vector<std::vector<std::int64_t>>& chosen, std::int64_t b,
                                         int experts) {
  const std::int64_t E = experts, G = static_cast<std::int64_t>(segs[me].size());
  std::vector<std::int64_t> before(b * G * E, 0);  // [b][G][E]
  for (std::size_t q = 0; q < segs.size(); ++q) {
    const std::int64_t Gq = static_cast<std::int64_t>(segs[q].size());
    for (std::int64_t s = 0; s < b; ++s)
      for (std::int64_t h = 0; h < Gq; ++h)
        for (std::int64_t e = 0; e < E; ++e) {
          const std::int64_t c = chosen[q][(s * Gq + h) * E + e];  // rank q, sequence s, its segment h
          // EXERCISE: add c to the counts of each of my segments g (same sequence, same expert)
          //           that rank q's segment h comes before.
          (void)c;
        }
  }
  return before;
}

int main(int argc, char** argv) { return ch07::check_capacity_prefix(argc, argv, before_by_hand); }
