// SPDX-License-Identifier: MIT
// Exercise 2's check: your idle shares read off printed timelines against the replay's.
#include "chapters/04_pipeline_parallel/exercises/check.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "backends/backend.hpp"
#include "backends/runtime.hpp"
#include "common/check.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch04 {

namespace {

const char* const kHintTable1 =
    "the idea and the API\n"
    "  A row of the table is one rank's whole step drawn in time units: what does each cell stand for,\n"
    "  and which cells are the bubble? Mind the padding the printer adds to line the cells up.\n"
    "  API: the rows come from ch04::timeline(s) (chapters/04_pipeline_parallel/pp_schedule.hpp); the\n"
    "  check compares with ch04::replay_units(s).idle_share(r) (same header). std::istringstream\n"
    "  (<sstream>) reads a string's whitespace-separated words one by one.";
const char* const kHintTable2 =
    "the rule\n"
    "  For each line: the cells are the whitespace-separated words after the first '|';\n"
    "  idle share = (cells equal to \".\") / (all cells of the row).";

}  // namespace

int check_bubble_from_table(int argc, char** argv, IdleSharesFn fn) {
  return run_exercise(argc, argv, kHintTable1, kHintTable2, [fn](Communicator& world, Ops&) {
    struct Case {
      ScheduleKind kind;
      int p, m, v;
    };
    using K = ScheduleKind;
    const std::vector<Case> cases = {
        {K::gpipe, 4, 4, 1},        {K::gpipe, 3, 2, 1},        {K::one_f_one_b, 4, 8, 1},  {K::one_f_one_b, 2, 1, 1},
        {K::one_f_one_b, 4, 12, 1}, {K::zb_h1, 4, 4, 1},        {K::zb_h1, 3, 6, 1},        {K::zb_h1, 4, 2, 1},
        {K::interleaved, 2, 4, 2},  {K::interleaved, 4, 8, 2},  {K::interleaved, 3, 6, 3},  {K::interleaved, 4, 12, 2},
        {K::gpipe, 1, 3, 1}};
    std::string problem;
    for (const Case& c : cases) {
      const Schedule s = make_schedule(c.kind, c.p, c.m, c.v);
      const std::vector<double> got = fn(timeline(s));
      const Replay rp = replay_units(s);
      const std::string name = schedule_name(c.kind) + " (p = " + std::to_string(c.p) + ", m = " + std::to_string(c.m) +
                               (c.v > 1 ? ", v = " + std::to_string(c.v) : "") + ")";
      if (static_cast<int>(got.size()) != c.p) {
        problem = name + ": " + std::to_string(got.size()) + " shares for " + std::to_string(c.p) +
                  " rows, expected one per rank";
        break;
      }
      for (int r = 0; r < c.p && problem.empty(); ++r)
        if (!(std::fabs(got[r] - rp.idle_share(r)) <= 1e-12))
          problem = name + ", rank " + std::to_string(r) + ": idle share " + fmt("%.12g", got[r]) + ", expected " +
                    fmt("%.12g", rp.idle_share(r));
      if (!problem.empty()) break;
    }
    return verdict(world, "bubble_from_table", problem);
  });
}

}  // namespace fivefold::ch04
