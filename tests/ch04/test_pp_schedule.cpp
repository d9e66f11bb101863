// SPDX-License-Identifier: MIT
// Chapter 04's schedules as data, over many layouts: every pass of a rank appears exactly once,
// the orders never wait on each other in a cycle, the peak of passes held and the unit-time
// bubble equal their closed forms, the stage split follows its rule, bad layouts are named, and
// the replay catches an order that would hang.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "chapters/04_pipeline_parallel/pp_schedule.hpp"
#include "common/check.hpp"

using namespace fivefold;
using namespace fivefold::ch04;

namespace {

const ScheduleKind kAll[] = {ScheduleKind::gpipe, ScheduleKind::one_f_one_b, ScheduleKind::interleaved,
                             ScheduleKind::zb_h1};

/// Most passes holding activations at once on rank r, counted from the order alone.
int held_peak(const Schedule& s, int r) {
  int held = 0, peak = 0;
  for (const Action& a : s.ranks[r]) {
    if (a.kind == 'F') ++held;
    if (a.kind == 'W' || (a.kind == 'B' && !s.split_backward)) --held;
    peak = std::max(peak, held);
  }
  return peak;
}

}  // namespace

TEST(PpSchedule, EveryLayoutRunsEachPassOnceWithoutHangingAndMatchesItsFormulas) {
  int layouts = 0;
  for (ScheduleKind k : kAll)
    for (int p = 1; p <= 5; ++p)
      for (int m = 1; m <= 10; ++m)
        for (int v = 1; v <= 3; ++v) {
          if (!check_layout(k, 60, p, m, v, m).empty()) continue;
          ++layouts;
          const Schedule s = make_schedule(k, p, m, v);
          SCOPED_TRACE(schedule_name(k) + " p=" + std::to_string(p) + " m=" + std::to_string(m) + " v=" + std::to_string(v));
          for (int r = 0; r < p; ++r) {
            std::multiset<std::tuple<char, int, int>> seen;
            for (const Action& a : s.ranks[r]) {
              EXPECT_EQ(a.vstage % p, r) << "a pass of another rank's chunk";
              seen.insert({a.kind, a.mb, a.vstage});
            }
            for (int c = 0; c < v; ++c)
              for (int j = 0; j < m; ++j)
                for (char kind : std::string(s.split_backward ? "FBW" : "FB"))
                  EXPECT_EQ(seen.count({kind, j, c * p + r}), 1u) << kind << j << " on chunk " << c << " of rank " << r;
            EXPECT_EQ(seen.size(), s.ranks[r].size());
            EXPECT_EQ(held_peak(s, r), peak_passes_formula(k, p, m, v, r)) << "rank " << r;
          }
          const Replay rp = replay_units(s);  // throws if the orders would hang
          if (k == ScheduleKind::zb_h1 && m < p) continue;  // its closed form needs m >= p
          for (int r = 0; r < p; ++r)
            EXPECT_NEAR(rp.idle_share(r), bubble_formula(k, p, m, v), 1e-12) << "rank " << r;
        }
  EXPECT_GT(layouts, 150);
}

TEST(PpSchedule, MessagesFormulaCountsTheChunkBoundaries) {
  // Every virtual stage but the last sends m activations forward, every one but the first m gradients back.
  for (int p = 1; p <= 4; ++p)
    for (int v = 1; v <= 3; ++v)
      for (int m = 1; m <= 4; ++m) EXPECT_EQ(messages_formula(p, m, v), 2LL * (v * p - 1) * m);
  // Interleaving multiplies plain 1F1B's messages by (v*p-1)/(p-1), not by v.
  EXPECT_EQ(messages_formula(4, 8, 2), 112);
  EXPECT_EQ(messages_formula(4, 8, 1), 48);
}

TEST(PpSchedule, StageSplitGivesTheExtraLayersToTheFirstStages) {
  using R = std::vector<std::pair<int, int>>;
  EXPECT_EQ(stage_ranges(8, 4), (R{{0, 2}, {2, 4}, {4, 6}, {6, 8}}));
  EXPECT_EQ(stage_ranges(7, 3), (R{{0, 3}, {3, 5}, {5, 7}}));
  EXPECT_EQ(stage_ranges(5, 4), (R{{0, 2}, {2, 3}, {3, 4}, {4, 5}}));
  EXPECT_EQ(rank_chunks(8, 2, 2, 1), (R{{2, 4}, {6, 8}}));  // virtual stages 1 and 3 of 4
  EXPECT_EQ(rank_chunks(12, 3, 2, 0), (R{{0, 2}, {6, 8}}));
}

TEST(PpSchedule, BadLayoutsAreNamedWithTheirFix) {
  EXPECT_NE(check_layout(ScheduleKind::one_f_one_b, 4, 5, 1, 1, 8).find("--pp 5 is more than --layers 4"), std::string::npos);
  EXPECT_NE(check_layout(ScheduleKind::gpipe, 8, 2, 3, 1, 8).find("--microbatches 3 does not divide --batch 8"),
            std::string::npos);
  EXPECT_NE(check_layout(ScheduleKind::interleaved, 8, 4, 6, 2, 12).find("multiple of --pp 4"), std::string::npos);
  EXPECT_NE(check_layout(ScheduleKind::interleaved, 8, 4, 8, 3, 8).find("12 chunks but --layers 8"), std::string::npos);
  EXPECT_NE(check_layout(ScheduleKind::interleaved, 10, 2, 2, 2, 8).find("not divisible"), std::string::npos);
  EXPECT_NE(check_layout(ScheduleKind::interleaved, 8, 1, 2, 2, 8).find("--pp >= 2"), std::string::npos);
  EXPECT_NE(check_layout(ScheduleKind::zb_h1, 8, 2, 2, 2, 8).find("needs --schedule interleaved"), std::string::npos);
  EXPECT_TRUE(check_layout(ScheduleKind::interleaved, 8, 4, 8, 2, 8).empty());
  EXPECT_THROW(parse_schedule("pipedream"), UsageError);
  EXPECT_THROW(make_schedule(ScheduleKind::interleaved, 4, 6, 2), UsageError);
}

TEST(PpSchedule, ReplayCatchesAnOrderThatWouldHang) {
  Schedule s = make_schedule(ScheduleKind::one_f_one_b, 2, 2);
  // Rank 1 (the last stage) runs B0 before F0: its backward waits for its own forward.
  std::swap(s.ranks[1][0], s.ranks[1][1]);
  try {
    replay_units(s);
    FAIL() << "a cyclic order was replayed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("would hang"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rank 1 at B0"), std::string::npos) << e.what();
  }
}

TEST(PpSchedule, ZeroBubbleDefersRWeightPassesOnRankR) {
  const Schedule s = make_schedule(ScheduleKind::zb_h1, 4, 8);
  for (int r = 0; r < 4; ++r) {
    // Count the W's still pending right after the last forward: rank r keeps r back (plus the
    // B that just ran on the ranks whose W follows it).
    int b = 0, w = 0, most = 0;
    for (const Action& a : s.ranks[r]) {
      if (a.kind == 'B') ++b;
      if (a.kind == 'W') ++w;
      if (a.kind == 'F' && a.mb == 7) most = b - w;
    }
    EXPECT_EQ(most, r) << "rank " << r;
  }
}
