// SPDX-License-Identifier: MIT
// Chapter 04's schedules as whole tables, worked out by hand from the rules (not printed by the
// code under test): for p = 4 stages and m = 8 microbatches, the unit-time timeline of GPipe,
// 1F1B, ZB-H1 and interleaved 1F1B with v = 2 chunks per rank, cell by cell; the makespan of
// each unit replay; and every rank's idle share equal to the closed-form bubble
// (chapters/04_pipeline_parallel/pp_schedule.hpp).
//
// How to read a table. One line per rank, one cell per time unit, "." when the rank idles.
// With unit times a forward F takes 1 unit and a fused backward takes 2, drawn as its B cell
// then its W cell; ZB-H1 splits the backward into B (input gradient, 1 unit) and W (weight
// gradient, 1 unit) that may run apart. Interleaved cells carry the chunk: "F3/1" is
// microbatch 3's forward on chunk 1. Each pass starts as soon as its rank is free and what it
// waits for has ended (messages take no time):
//   - F of microbatch j on (virtual) stage k waits for F of j on stage k - 1;
//   - the backward of j on the last stage waits for its own F of j, on any other stage for the
//     backward of j on stage k + 1 (a fused backward sends its gradient after its W);
//   - W waits for its own B.
// The "// 0 1 2 ..." rulers above the tables number the time units.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chapters/04_pipeline_parallel/pp_schedule.hpp"

namespace fivefold::ch04 {
namespace {

// The unit replay of make_schedule(kind, p, m, v) ends at @p makespan, the closed form is the
// fraction @p bubble worked out by hand, and every rank idles exactly that share of the step.
void expect_unit_replay(ScheduleKind kind, int p, int m, int v, double makespan, double bubble) {
  const Replay rep = replay_units(make_schedule(kind, p, m, v));
  EXPECT_DOUBLE_EQ(rep.makespan, makespan);
  const double formula = bubble_formula(kind, p, m, v);
  EXPECT_NEAR(formula, bubble, 1e-12);
  for (int r = 0; r < p; ++r) EXPECT_NEAR(rep.idle_share(r), formula, 1e-12) << "rank " << r;
}

// A warm-up: 1F1B on p = 2 stages with m = 2 microbatches.
//  - Warm-up w = p - r - 1 forwards: 1 on rank 0, 0 on rank 1. Rank 0 runs F0 (t = 0) and,
//    as its first steady pass, F1 (t = 1); rank 1 runs F0 at t = 1, when rank 0's F0 ends.
//  - Rank 1 is the last stage: its B0 needs only its own F0, so it runs at t = 2..3; then F1
//    (t = 4) and B1 (t = 5..6). Rank 0's B0 waits for rank 1's B0 (ends at 4): t = 4..5;
//    its B1 waits for rank 1's B1 (ends at 7): t = 7..8. Makespan 9.
//  - Bubbles: rank 0 idles at t = 2, 3 (waiting for B0) and 6 (for B1); rank 1 at t = 0 and
//    7, 8. 3 units each of 9: 1/3 = (p-1)/(m+p-1).
TEST(Ch04ScheduleTables, OneFOneBTwoStagesTwoMicrobatches) {
  const std::vector<std::string> expected = {
      //        0  1  2  3  4  5  6  7  8
      "rank 0 | F0 F1 .  .  B0 W0 .  B1 W1",
      "rank 1 | .  F0 B0 W0 F1 B1 W1 .  .",
  };
  EXPECT_EQ(timeline(make_schedule(ScheduleKind::one_f_one_b, 2, 2)), expected);
  expect_unit_replay(ScheduleKind::one_f_one_b, 2, 2, 1, 9.0, 1.0 / 3.0);
}

// GPipe, p = 4, m = 8: every rank runs F0..F7, then the fused backwards B0..B7.
//  - Forwards: rank r runs its 8 forwards back to back from t = r (F0 reaches rank r after the
//    r ranks above it forwarded it), Fj at t = r + j, done at t = r + 8.
//  - Backwards: rank 3 (the last stage) starts B0 as soon as its forwards are done, t = 11 (B0
//    needs only its own F0). Each backward takes 2 units and rank r's B0 needs rank r+1's, so
//    rank r runs Bj at t = 11 + 2(3 - r) + 2j: rank 0 starts B0 at 17 and ends B7 at 33.
//  - Bubbles: rank r idles r units before F0, 9 - 3r units between F7 and B0 (9, 6, 3, 0 on
//    ranks 0..3: rank 0 at t = 8..16) and 2r units after B7. 9 units on every rank:
//    9/33 = 3/11 = (p-1)/(m+p-1); makespan 3(m + p - 1) = 33.
TEST(Ch04ScheduleTables, GPipeFourStagesEightMicrobatches) {
  const std::vector<std::string> expected = {
      //        0  1  2  3  4  5  6  7  8  9  10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
      "rank 0 | F0 F1 F2 F3 F4 F5 F6 F7 .  .  .  .  .  .  .  .  .  B0 W0 B1 W1 B2 W2 B3 W3 B4 W4 B5 W5 B6 W6 B7 W7",
      "rank 1 | .  F0 F1 F2 F3 F4 F5 F6 F7 .  .  .  .  .  .  B0 W0 B1 W1 B2 W2 B3 W3 B4 W4 B5 W5 B6 W6 B7 W7 .  .",
      "rank 2 | .  .  F0 F1 F2 F3 F4 F5 F6 F7 .  .  .  B0 W0 B1 W1 B2 W2 B3 W3 B4 W4 B5 W5 B6 W6 B7 W7 .  .  .  .",
      "rank 3 | .  .  .  F0 F1 F2 F3 F4 F5 F6 F7 B0 W0 B1 W1 B2 W2 B3 W3 B4 W4 B5 W5 B6 W6 B7 W7 .  .  .  .  .  .",
  };
  EXPECT_EQ(timeline(make_schedule(ScheduleKind::gpipe, 4, 8)), expected);
  expect_unit_replay(ScheduleKind::gpipe, 4, 8, 1, 33.0, 3.0 / 11.0);
}

// 1F1B (PipeDream-flush), p = 4, m = 8: warm-up w = p - r - 1 forwards (3, 2, 1, 0 on ranks
// 0..3), then the pairs F(w+i) B(i), then the cool-down: the last w backwards.
//  - Rank r runs its w warm-up forwards and its first steady forward F(w) back to back from
//    t = r, so every rank has run 4 - r forwards by t = 4.
//  - Rank 3 runs B0 right after its F0 (t = 4..5), then alternates F B with no gap: Fj at
//    t = 3 + 3j, Bj at t = 4 + 3j, B7 ending at 27. B0's gradient climbs one rank per 2 units:
//    rank r runs B0 at t = 10 - 2r, so until then it idles 6 - 2r units (rank 0: t = 4..9).
//  - Steady state: rank r runs Bi at t = 10 - 2r + 3i with a forward in each gap between
//    backwards. In the cool-down there is no forward left for that slot, so the rank idles one
//    unit before each of its w cool-down backwards (rank 0: t = 24, 27, 30); rank 0's B7 ends
//    at 33.
//  - Bubbles: r (start) + 6 - 2r (waiting for B0) + w = 3 - r (cool-down) + 2r (end) = 9 units
//    on every rank, the same 9/33 = 3/11 as GPipe: 1F1B saves memory (at most p - r microbatches
//    in flight on rank r instead of m), not time.
TEST(Ch04ScheduleTables, OneFOneBFourStagesEightMicrobatches) {
  const std::vector<std::string> expected = {
      //        0  1  2  3  4  5  6  7  8  9  10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
      "rank 0 | F0 F1 F2 F3 .  .  .  .  .  .  B0 W0 F4 B1 W1 F5 B2 W2 F6 B3 W3 F7 B4 W4 .  B5 W5 .  B6 W6 .  B7 W7",
      "rank 1 | .  F0 F1 F2 .  .  .  .  B0 W0 F3 B1 W1 F4 B2 W2 F5 B3 W3 F6 B4 W4 F7 B5 W5 .  B6 W6 .  B7 W7 .  .",
      "rank 2 | .  .  F0 F1 .  .  B0 W0 F2 B1 W1 F3 B2 W2 F4 B3 W3 F5 B4 W4 F6 B5 W5 F7 B6 W6 .  B7 W7 .  .  .  .",
      "rank 3 | .  .  .  F0 B0 W0 F1 B1 W1 F2 B2 W2 F3 B3 W3 F4 B4 W4 F5 B5 W5 F6 B6 W6 F7 B7 W7 .  .  .  .  .  .",
  };
  EXPECT_EQ(timeline(make_schedule(ScheduleKind::one_f_one_b, 4, 8)), expected);
  expect_unit_replay(ScheduleKind::one_f_one_b, 4, 8, 1, 33.0, 3.0 / 11.0);
}

// ZB-H1, p = 4, m = 8: 1F1B's order with every backward split into B and W. Rank r keeps up
// to r W's pending: after each B it queues that W and, once more than r are queued, runs the
// oldest; after its last B it runs the rest. So rank 0 runs each W right after its B, rank 1
// one B later (F0 F1 F2 B0 F3 B1 W0 F4 B2 W1 ...), rank 3 only from its 4th B on (after B3).
//  - The warm-up is 1F1B's (3, 2, 1, 0 forwards plus the first steady one, all done by t = 4).
//  - B takes 1 unit now, so B0's gradient climbs one rank per unit: rank r runs B0 at t = 7 - r
//    and idles the 3 - r units before it (rank 0: t = 4..6).
//  - From then on no rank waits again: the W's held back fill the slots in which 1F1B's ranks
//    idle waiting for a gradient, and rank r ends its 3m = 24 units of work at
//    r + (3 - r) + 24 = 27, the same time on every rank (rank 3: W4 W5 W6 W7 at t = 23..26).
//  - Bubbles: r units at the start + 3 - r waiting for B0 = p - 1 = 3 on every rank:
//    3/27 = 1/9 = (p-1)/(3m+p-1); makespan 3m + p - 1 = 27 instead of 1F1B's 33.
TEST(Ch04ScheduleTables, ZbH1FourStagesEightMicrobatches) {
  const std::vector<std::string> expected = {
      //        0  1  2  3  4  5  6  7  8  9  10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26
      "rank 0 | F0 F1 F2 F3 .  .  .  B0 W0 F4 B1 W1 F5 B2 W2 F6 B3 W3 F7 B4 W4 B5 W5 B6 W6 B7 W7",
      "rank 1 | .  F0 F1 F2 .  .  B0 F3 B1 W0 F4 B2 W1 F5 B3 W2 F6 B4 W3 F7 B5 W4 B6 W5 B7 W6 W7",
      "rank 2 | .  .  F0 F1 .  B0 F2 B1 F3 B2 W0 F4 B3 W1 F5 B4 W2 F6 B5 W3 F7 B6 W4 B7 W5 W6 W7",
      "rank 3 | .  .  .  F0 B0 F1 B1 F2 B2 F3 B3 W0 F4 B4 W1 F5 B5 W2 F6 B6 W3 F7 B7 W4 W5 W6 W7",
  };
  EXPECT_EQ(timeline(make_schedule(ScheduleKind::zb_h1, 4, 8)), expected);
  expect_unit_replay(ScheduleKind::zb_h1, 4, 8, 1, 27.0, 1.0 / 9.0);
}

// Interleaved 1F1B, p = 4, m = 8, v = 2: rank r holds chunk 0 = virtual stage r and chunk 1 =
// virtual stage 4 + r (V = 8; rank 3's chunk 1 is the last stage). One unit is one chunk's
// pass, i.e. half the layers of a 1F1B stage; backwards are fused (2 units).
//  - Order: the 16 forwards of a rank go in groups of p = 4 microbatches, F0-3/0, F0-3/1,
//    F4-7/0, F4-7/1; the 16 backwards in the same groups, chunk 1 first: B0-3/1, B0-3/0,
//    B4-7/1, B4-7/0. Warm-up 2(p - r - 1) + (v - 1)p forwards: 10, 8, 6, 4 on ranks 0..3, then
//    pairs (next forward, next backward), then the remaining backwards (rank 0: F6/0 B0/1,
//    F7/0 B1/1, F4/1 B2/1, F5/1 B3/1, F6/1 B0/0, F7/1 B1/0, then B2/0 .. B7/0 in that order).
//  - Forwards: F0-3/0 run down the ranks as in GPipe (Fj/0 on rank r at t = r + j, j < 4).
//    Microbatch 0 comes back to rank 0 (virtual stage 4) at t = 4 when rank 3's F0/0 ends, so
//    rank 0 runs F0-3/1 at t = 4..7 and F4/0 F5/0 F6/0 at t = 8..10 without a gap.
//  - The first gradient: rank 3's F0/1 (virtual stage 7) at t = 7, its B0/1 at t = 8..9, then
//    B0/1 on ranks 2, 1, 0 at t = 10, 12, 14: rank 0 idles t = 11..13, rank 1 t = 10..11,
//    rank 2 t = 9 waiting for it. Rank 0 also waits one unit (t = 19) for F4/0 from rank 3
//    (t = 19) before its F4/1. Rank 3 never waits after t = 3: F B F B ... to t = 51.
//  - Cool-down: as in 1F1B, a rank without forwards left idles one unit before backwards it
//    has to wait for (rank 0: t = 34, 37, 40, 43, 46; rank 1: 35, 38, 41, 44; rank 2: 39, 42),
//    and rank r ends 2r units before rank 0 (rank 0 ends B7/0 at 57).
//  - Bubbles: rank 0: 3 + 1 + 5; rank 1: 1 + 2 + 4 + 2; rank 2: 2 + 1 + 2 + 4; rank 3: 3 + 6.
//    9 units on every rank, as in 1F1B, but of 3vm + 3(p - 1) = 57 units:
//    9/57 = 3/19 = (p-1)/(vm+p-1). In time of a whole stage's pass that is 4.5 idle units
//    instead of 1F1B's 9.
// Each line is written in pieces: "rank R |", then units 0..18, 19..37 and 38..56, one piece a
// line, numbered by the three rulers.
TEST(Ch04ScheduleTables, InterleavedFourStagesEightMicrobatchesTwoChunks) {
  const std::vector<std::string> expected = {
        //  0    1    2    3    4    5    6    7    8    9    10   11   12   13   14   15   16   17   18
        //  19   20   21   22   23   24   25   26   27   28   29   30   31   32   33   34   35   36   37
        //  38   39   40   41   42   43   44   45   46   47   48   49   50   51   52   53   54   55   56
      "rank 0 |"
          " F0/0 F1/0 F2/0 F3/0 F0/1 F1/1 F2/1 F3/1 F4/0 F5/0 F6/0 .    .    .    B0/1 W0/1 F7/0 B1/1 W1/1"
          " .    F4/1 B2/1 W2/1 F5/1 B3/1 W3/1 F6/1 B0/0 W0/0 F7/1 B1/0 W1/0 B2/0 W2/0 .    B3/0 W3/0 .   "
          " B4/1 W4/1 .    B5/1 W5/1 .    B6/1 W6/1 .    B7/1 W7/1 B4/0 W4/0 B5/0 W5/0 B6/0 W6/0 B7/0 W7/0",
      "rank 1 |"
          " .    F0/0 F1/0 F2/0 F3/0 F0/1 F1/1 F2/1 F3/1 F4/0 .    .    B0/1 W0/1 F5/0 B1/1 W1/1 F6/0 B2/1"
          " W2/1 F7/0 B3/1 W3/1 F4/1 B0/0 W0/0 F5/1 B1/0 W1/0 F6/1 B2/0 W2/0 F7/1 B3/0 W3/0 .    B4/1 W4/1"
          " .    B5/1 W5/1 .    B6/1 W6/1 .    B7/1 W7/1 B4/0 W4/0 B5/0 W5/0 B6/0 W6/0 B7/0 W7/0 .    .",
      "rank 2 |"
          " .    .    F0/0 F1/0 F2/0 F3/0 F0/1 F1/1 F2/1 .    B0/1 W0/1 F3/1 B1/1 W1/1 F4/0 B2/1 W2/1 F5/0"
          " B3/1 W3/1 F6/0 B0/0 W0/0 F7/0 B1/0 W1/0 F4/1 B2/0 W2/0 F5/1 B3/0 W3/0 F6/1 B4/1 W4/1 F7/1 B5/1"
          " W5/1 .    B6/1 W6/1 .    B7/1 W7/1 B4/0 W4/0 B5/0 W5/0 B6/0 W6/0 B7/0 W7/0 .    .    .    .",
      "rank 3 |"
          " .    .    .    F0/0 F1/0 F2/0 F3/0 F0/1 B0/1 W0/1 F1/1 B1/1 W1/1 F2/1 B2/1 W2/1 F3/1 B3/1 W3/1"
          " F4/0 B0/0 W0/0 F5/0 B1/0 W1/0 F6/0 B2/0 W2/0 F7/0 B3/0 W3/0 F4/1 B4/1 W4/1 F5/1 B5/1 W5/1 F6/1"
          " B6/1 W6/1 F7/1 B7/1 W7/1 B4/0 W4/0 B5/0 W5/0 B6/0 W6/0 B7/0 W7/0 .    .    .    .    .    .",
  };
  EXPECT_EQ(timeline(make_schedule(ScheduleKind::interleaved, 4, 8, 2)), expected);
  expect_unit_replay(ScheduleKind::interleaved, 4, 8, 2, 57.0, 3.0 / 19.0);
}

}  // namespace
}  // namespace fivefold::ch04
