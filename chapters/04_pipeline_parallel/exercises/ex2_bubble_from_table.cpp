// SPDX-License-Identifier: MIT
// Exercise 2: the bubble read off a printed timeline (chapter 04, step 6).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch04_ex2_bubble_from_table
//   build/cpu/bin/ch04_ex2_bubble_from_table               (--hint 1, then --hint 2)
// ch04::timeline() prints one row per rank, one cell per time unit ("rank 0 | F0 F1 .  B0 W0 ...").
// The check gives you the rows of gpipe, 1f1b, zb-h1 and interleaved at several (p, m, v) and
// prints PASSED when your idle shares equal the replay's (replay_units(s).idle_share(r)) to 1e-12.
//
#include <sstream>

#include "chapters/04_pipeline_parallel/exercises/check.hpp"

using namespace fivefold;

/// Each rank's idle share of the step, from the timeline rows (one per rank, in rank order).
std::vector<double> idle_shares(const std::vector<std::string>& timeline_lines) {
  std::vector<double> shares;
  for (const std::string& line : timeline_lines) {
    std::istringstream row(line.substr(line.find('|') + 1));  // the row's cells, after "rank r |"
    [[maybe_unused]] int cells = 0, idle = 0;
    // EXERCISE: read the row's cells one by one (one per time unit: a pass such as F3, B10, F2/1,
    //           or '.' when idle; padded to a common width) and count them, and the idle ones.
    shares.push_back(0.0);  // EXERCISE: replace 0.0 with this rank's idle share of its row (the whole step)
  }
  return shares;
}

int main(int argc, char** argv) { return ch04::check_bubble_from_table(argc, argv, idle_shares); }
