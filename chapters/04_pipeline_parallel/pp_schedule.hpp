// SPDX-License-Identifier: MIT
/// @file pp_schedule.hpp
/// @brief Pipeline schedules as data: which layers each stage holds, the ordered passes every
/// rank runs (GPipe, 1F1B, interleaved 1F1B, ZB-H1), a replay of those orders with given pass
/// times (the timeline, the bubble), and the closed forms they are checked against.
///
/// A schedule is only an order per rank: the runner (pp_runner.hpp) executes it with real
/// send/recv, and replay() executes it on paper. Both wait for the same things: a forward for
/// the previous virtual stage's forward of the same microbatch, a backward for the next virtual
/// stage's backward (the last one for its own forward), W for its own B.
///
/// Leaves out: other schedules (ZB-H2, ZB-V, DualPipe, breadth-first), uneven chunk sizes for
/// interleaving.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace fivefold::ch04 {

/// The schedules of this chapter.
enum class ScheduleKind {
  gpipe,        ///< all forwards, then all backwards
  one_f_one_b,  ///< PipeDream-flush: warm-up, one forward one backward, cool-down
  interleaved,  ///< Megatron's interleaved 1F1B over v virtual stages per rank
  zb_h1,        ///< zero bubble H1: 1F1B with the backward split into B and W, s W's deferred on stage s
};

/// "gpipe", "1f1b", "interleaved", "zb-h1".
std::string schedule_name(ScheduleKind k);
/// The kind called @p name (throws UsageError naming the valid ones).
ScheduleKind parse_schedule(const std::string& name);

/// One pass: 'F' forward; 'B' backward (the whole backward, B then W, unless the schedule splits
/// it; then the input gradient only); 'W' the weight gradient of a split backward.
struct Action {
  char kind = 'F';  ///< 'F', 'B' or 'W'
  int mb = 0;       ///< microbatch 0..m-1
  int vstage = 0;   ///< virtual stage 0..v*p-1: chunk c of rank r is virtual stage c*p + r
  /// Same kind, microbatch and virtual stage.
  bool operator==(const Action& o) const { return kind == o.kind && mb == o.mb && vstage == o.vstage; }
};

/// The passes of one step, in order, for every rank.
struct Schedule {
  ScheduleKind kind = ScheduleKind::one_f_one_b;  ///< which schedule
  int p = 1;  ///< stages (ranks)
  int m = 1;  ///< microbatches
  int v = 1;  ///< chunks (virtual stages) per rank
  bool split_backward = false;  ///< B and W apart (zb-h1)
  std::vector<std::vector<Action>> ranks;  ///< ranks[r]: rank r's passes in order
  /// Virtual stages of the model (v * p).
  int stages() const { return v * p; }
};

/// The schedule @p kind for @p p stages, @p m microbatches, @p v chunks per rank (1 unless
/// interleaved). Throws UsageError (check_layout's message) when the layout cannot take it.
Schedule make_schedule(ScheduleKind kind, int p, int m, int v = 1);

/// "" when @p kind can run @p layers layers on @p p stages with @p m microbatches of a batch of
/// @p batch sequences and @p v chunks per rank; otherwise one line naming the value and the fix.
std::string check_layout(ScheduleKind kind, int layers, int p, int m, int v, int batch);

/// Layers [first, last) of each of @p stages consecutive stages. When @p stages does not divide
/// @p layers, the L mod stages extra layers go to the first stages, one each (the last stage
/// already carries the final norm, the head and the loss).
std::vector<std::pair<int, int>> stage_ranges(int layers, int stages);
/// The chunks rank @p r holds: virtual stages r, r+p, ..., r+(v-1)p of stage_ranges(L, v*p).
std::vector<std::pair<int, int>> rank_chunks(int layers, int p, int v, int r);

/// A pass placed in time by replay().
struct Timed {
  Action a;            ///< the pass
  double start = 0.0;  ///< when it starts
  double end = 0.0;    ///< when it ends
};

/// A schedule executed on paper: each rank runs its passes in order, each as soon as its rank
/// is free and what it waits for has ended (messages take no time).
struct Replay {
  std::vector<std::vector<Timed>> ranks;  ///< per rank, the passes with their times
  double makespan = 0.0;                  ///< the end of the last pass
  /// Share of the makespan rank @p r spends idle (1 - its busy time / makespan).
  double idle_share(int r) const;
};

/// Replays @p s with the pass times @p duration(rank, action). Throws Error naming the stuck
/// passes when the orders wait on each other in a cycle (a schedule that would hang).
Replay replay(const Schedule& s, const std::function<double(int, const Action&)>& duration);
/// Unit pass times: F = B = W = 1 per chunk; a fused backward (B then W) takes 2.
Replay replay_units(const Schedule& s);

/// The unit replay as text, one line per rank ("rank 0 | F0 F1 . B0 W0 ..."): every time unit
/// one cell, the pass's letter and microbatch ("/c" chunk suffix when v > 1), idle as '.'.
/// A fused backward shows as its B cell then its W cell.
std::vector<std::string> timeline(const Schedule& s);

/// The closed-form bubble (idle share of the step at equal stage times): (p-1)/(m+p-1) for GPipe
/// and 1F1B, (p-1)/(v*m+p-1) interleaved, (p-1)/(3m+p-1) for ZB-H1 with equal F, B and W.
double bubble_formula(ScheduleKind kind, int p, int m, int v);
/// Most (chunk, microbatch) passes rank @p r holds activations for at once: m (GPipe),
/// min(p-r, m) (1F1B), min(p, m) (ZB-H1: 1F1B's stage 0 on every stage),
/// min(2(p-r-1) + (v-1)p + 1, v*m) (interleaved: its warm-up plus one).
int peak_passes_formula(ScheduleKind kind, int p, int m, int v, int r);
/// Point-to-point messages of one step over all links (activations forward, their gradients
/// back): 2 * (v*p - 1) * m.
long long messages_formula(int p, int m, int v);

}  // namespace fivefold::ch04
