// SPDX-License-Identifier: MIT
// The exercise checks (see check.hpp): what both share (the graded hints, the verdict) and
// exercise 2's check: your idle shares read off printed timelines against the replay's.
#include "chapters/04_pipeline_parallel/exercises/check.hpp"

#include <cmath>
#include <cstdio>
#include <set>
#include <string>

#include "backends/backend.hpp"
#include "backends/runtime.hpp"
#include "common/check.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch04 {

namespace {

const char* const kHintLine = "run again with --hint 1 (the idea and the API), then --hint 2 (the rule)";

/// 0 without a hint flag, else the level of `--hint 1|2`; any other argument is a usage error.
int hint_level(int argc, char** argv) {
  int level = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    FIVEFOLD_USAGE_CHECK(a == "--hint", "unexpected argument '", a,
                         "'; run with no argument for the check, or --hint 1 / --hint 2");
    const std::string n = i + 1 < argc ? argv[++i] : "";
    FIVEFOLD_USAGE_CHECK(n == "1" || n == "2", "--hint takes 1 (the idea and the API) or 2 (the rule), got '", n, "'");
    level = std::stoi(n);
  }
  return level;
}

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

int run_exercise(int argc, char** argv, const char* hint1, const char* hint2,
                 const std::function<int(Communicator&, Ops&)>& check) {
  return run_mpi_main(argc, argv, [&](int ac, char** av) {
    const int level = hint_level(ac, av);
    if (level > 0) {
      if (MpiSession::world_rank() == 0) std::printf("hint %d: %s\n", level, level == 1 ? hint1 : hint2);
      return 0;
    }
    Backend b = make_backend("cpu");
    return check(*b.world, *b.ops);
  });
}

int verdict(Communicator& world, const std::string& what, const std::string& problem) {
  const std::vector<std::string> all = all_gather_strings(world, problem);
  const bool ok = all_ranks_true(world, problem.empty());
  if (world.rank() == 0) {
    std::printf("exercise %s at n = %d: %s\n", what.c_str(), world.size(), ok ? "PASSED" : "FAILED");
    std::set<std::string> seen;
    for (const std::string& s : all)
      if (!s.empty() && seen.insert(s).second) std::printf("  %s\n", s.c_str());
    if (!ok) std::printf("  hint: %s\n", kHintLine);
    std::fflush(stdout);
  }
  return ok ? 0 : 1;
}

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
