// SPDX-License-Identifier: MIT
// Exercise 1's check: 1F1B schedules built from your routine and judged by what a schedule must
// do (run every pass once, not hang, hold min(p-r, m) activations, leave the closed-form bubble,
// train like the serial model), not by comparing lists; the first difference from the library's
// order is only named to help find the problem.
#include "chapters/04_pipeline_parallel/exercises/check.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "common/check.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch04 {

namespace {

std::string str(const Action& a) { return a.kind + std::to_string(a.mb); }

std::string layout(int p, int m) { return "p = " + std::to_string(p) + ", m = " + std::to_string(m); }

/// ", first difference from 1F1B's order: position i, expected X, got Y" ("" when none).
std::string first_difference(const std::vector<Action>& got, const std::vector<Action>& want) {
  for (std::size_t i = 0; i < std::max(got.size(), want.size()); ++i) {
    if (i < got.size() && i < want.size() && got[i] == want[i]) continue;
    // The virtual stage is named only when it is what differs.
    const bool stage = i < got.size() && i < want.size() && str(got[i]) == str(want[i]);
    auto name = [stage](const Action& a) {
      return str(a) + (stage ? " of virtual stage " + std::to_string(a.vstage) : std::string());
    };
    const std::string e = i < want.size() ? name(want[i]) : "the end of the order";
    const std::string g = i < got.size() ? name(got[i]) : "the end of the order";
    return "; first difference from 1F1B's order: position " + std::to_string(i) + ", expected " + e + ", got " + g;
  }
  return "";
}

/// Rank @p r's order: only F and B of its own virtual stage, each microbatch's F and B once.
std::string passes_problem(const std::vector<Action>& order, int m, int r) {
  std::map<std::pair<char, int>, int> runs;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const Action& a = order[i];
    const std::string at = "position " + std::to_string(i) + " (" + str(a) + ")";
    if (a.kind != 'F' && a.kind != 'B')
      return at + " is not a forward or a whole backward: 1F1B here runs only 'F' and 'B'";
    if (a.mb < 0 || a.mb >= m) return at + ": microbatch " + std::to_string(a.mb) + " is not in 0..m-1";
    if (a.vstage != r)
      return at + " is for virtual stage " + std::to_string(a.vstage) + ", but rank " + std::to_string(r) +
             " holds virtual stage " + std::to_string(r);
    ++runs[{a.kind, a.mb}];
  }
  for (char k : {'F', 'B'})
    for (int mb = 0; mb < m; ++mb)
      if (runs[{k, mb}] != 1)
        return k + std::to_string(mb) + " runs " + std::to_string(runs[{k, mb}]) +
               " times (every microbatch's forward and backward run exactly once on every rank)";
  return "";
}

/// The first problem of @p s (built from your orders) on paper, or "".
std::string paper_problem(const Schedule& s) {
  const Schedule ref = make_schedule(ScheduleKind::one_f_one_b, s.p, s.m);
  for (int r = 0; r < s.p; ++r) {
    const std::string bad = passes_problem(s.ranks[r], s.m, r);
    if (!bad.empty())
      return layout(s.p, s.m) + ", rank " + std::to_string(r) + ": " + bad + first_difference(s.ranks[r], ref.ranks[r]);
  }
  Replay rp;
  try {
    rp = replay_units(s);
  } catch (const Error& e) {
    std::string diff;
    for (int r = 0; r < s.p && diff.empty(); ++r)
      if (!first_difference(s.ranks[r], ref.ranks[r]).empty())
        diff = "; rank " + std::to_string(r) + ": " + first_difference(s.ranks[r], ref.ranks[r]).substr(2);
    return layout(s.p, s.m) + ", replayed on paper: " + e.what() + diff;
  }
  for (int r = 0; r < s.p; ++r) {
    int held = 0, peak = 0;
    for (const Action& a : s.ranks[r]) peak = std::max(peak, held += a.kind == 'F' ? 1 : -1);
    const int want = peak_passes_formula(ScheduleKind::one_f_one_b, s.p, s.m, 1, r);
    if (peak != want)
      return layout(s.p, s.m) + ", rank " + std::to_string(r) + ": holds the activations of up to " +
             std::to_string(peak) + " microbatch(es) at once, expected min(p-r, m) = " + std::to_string(want) +
             first_difference(s.ranks[r], ref.ranks[r]);
  }
  const double bubble = bubble_formula(ScheduleKind::one_f_one_b, s.p, s.m, 1);
  for (int r = 0; r < s.p; ++r)
    if (std::fabs(rp.idle_share(r) - bubble) > 1e-12)
      return layout(s.p, s.m) + ", rank " + std::to_string(r) + ": idle " + fmt("%.6f", rp.idle_share(r)) +
             " of the step at unit times (F = 1, B = 2), expected the bubble (p-1)/(m+p-1) = " + fmt("%.6f", bubble) +
             first_difference(s.ranks[r], ref.ranks[r]);
  return "";
}

/// Your orders for every rank of (p, m), as a 1F1B schedule.
Schedule schedule_of(OneFOneBOrderFn fn, int p, int m) {
  Schedule s;
  s.kind = ScheduleKind::one_f_one_b;
  s.p = p;
  s.m = m;
  s.v = 1;
  s.split_backward = false;
  for (int r = 0; r < p; ++r) s.ranks.push_back(fn(p, m, r));
  return s;
}

/// The real run of @p s at the world size: the step losses against the serial model's, and this
/// rank's peak passes against the formula.
std::string run_problem(Communicator& world, Ops& ops, const Schedule& s) {
  const RunLosses run = train_tiny(world, ops, s, 2);
  for (std::size_t k = 0; k < run.serial.size(); ++k)
    if (!(std::fabs(run.pipeline[k] - run.serial[k]) <= 1e-5 * std::max(1.0, std::fabs(run.serial[k]))))
      return layout(s.p, s.m) + ", trained for real: step " + std::to_string(k) + " loss " +
             fmt("%.7f", run.pipeline[k]) + ", the serial model's " + fmt("%.7f", run.serial[k]);
  const int want = peak_passes_formula(ScheduleKind::one_f_one_b, s.p, s.m, 1, world.rank());
  if (run.peak_passes != want)
    return layout(s.p, s.m) + ", trained for real: rank " + std::to_string(world.rank()) + " held " +
           std::to_string(run.peak_passes) + " passes' activations at once, expected min(p-r, m) = " +
           std::to_string(want);
  return "";
}

const char* const kHint1F1B1 =
    "the idea and the API\n"
    "  A microbatch's backward reaches stage r only after its forward has gone on to the last stage and\n"
    "  its gradient has come back, so stage r fills that wait with forwards (warm-up). From then on each\n"
    "  backward frees one microbatch's activations and each forward takes one, so they alternate (steady\n"
    "  state). When no forward is left, the backwards still owed run (cool-down).\n"
    "  API (chapters/04_pipeline_parallel/pp_schedule.hpp): ch04::Action{kind, mb, vstage}, kind 'F' or\n"
    "  'B' (the whole backward), mb 0..m-1, vstage = r (one chunk per rank). The check puts your orders\n"
    "  in a ch04::Schedule (kind one_f_one_b) and judges them with ch04::replay_units,\n"
    "  ch04::peak_passes_formula and ch04::bubble_formula (same header), then trains with\n"
    "  ch04::PipelineRunner (pp_runner.hpp).";
const char* const kHint1F1B2 =
    "the rule\n"
    "  warm-up: w = min(p-1-r, m) forwards, F0 .. F(w-1);\n"
    "  steady:  for i = 0 .. m-w-1: F(w+i), then B(i);\n"
    "  cool-down: B(m-w) .. B(m-1).\n"
    "  Stage r then holds at most min(p-r, m) microbatches, and the last stage alternates F, B from the start.";

}  // namespace

int check_one_f_one_b(int argc, char** argv, OneFOneBOrderFn fn) {
  return run_exercise(argc, argv, kHint1F1B1, kHint1F1B2, [fn](Communicator& world, Ops& ops) {
    const int n = world.size();
    std::vector<std::pair<int, int>> layouts = {{n, 2}, {n, n + 2}};  // the ones that also run for real
    for (int p = 1; p <= 5; ++p)
      for (int m : {1, 2, 3, 4, 8}) layouts.emplace_back(p, m);
    std::string problem;
    for (const auto& [p, m] : layouts)
      if (problem.empty()) problem = paper_problem(schedule_of(fn, p, m));
    for (int i = 0; i < 2 && problem.empty(); ++i)  // the same on every rank: all run, or none
      problem = run_problem(world, ops, schedule_of(fn, layouts[i].first, layouts[i].second));
    return verdict(world, "one_f_one_b", problem);
  });
}

}  // namespace fivefold::ch04
