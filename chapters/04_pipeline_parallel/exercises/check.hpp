// SPDX-License-Identifier: MIT
/// @file check.hpp
/// @brief The checks the chapter 04 exercises run on a routine (yours, or the solution): a rank's
/// 1F1B order (replayed on paper, then trained for real under MPI against the serial model) and
/// the idle shares read back from a printed timeline. Each check also answers --hint 1 / --hint 2.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "backends/communicator.hpp"
#include "backends/ops.hpp"
#include "chapters/04_pipeline_parallel/pp_schedule.hpp"
#include "chapters/exercise.hpp"

namespace fivefold::ch04 {

/// Exercise 1: rank @p r's passes of 1F1B for @p p stages and @p m microbatches (v = 1, whole backwards).
using OneFOneBOrderFn = std::vector<Action> (*)(int p, int m, int r);
/// Exercise 2: each rank's idle share from the rows of timeline() ("rank 0 | F0 F1 . B0 W0 ...").
using IdleSharesFn = std::vector<double> (*)(const std::vector<std::string>& timeline_lines);

/// Builds 1F1B schedules from @p fn's orders for several (p, m), m < p included, and checks each
/// on paper: every F and B once per rank, a replay that does not hang, peak passes held ==
/// min(p-r, m), unit bubble == bubble_formula. Then trains 2 AdamW steps of a tiny model on a
/// pipeline of the world size with those orders and compares the losses with the serial model's.
/// Rank 0 prints PASSED or the first problem; returns 0 only when every check passed.
int check_one_f_one_b(int argc, char** argv, OneFOneBOrderFn fn);
/// Feeds @p fn the timelines of gpipe, 1f1b, zb-h1 and interleaved at several (p, m, v) and
/// compares its shares with replay_units(s).idle_share(r) to 1e-12. Rank 0 prints the verdict.
int check_bubble_from_table(int argc, char** argv, IdleSharesFn fn);

/// The losses of @p steps AdamW steps of a tiny model (layers max(4, world size), dim 32, batch
/// 2m): first the pipeline over the world running @p s, then the serial model on the same data.
struct RunLosses {
  std::vector<double> pipeline;  ///< per step, the same on every rank
  std::vector<double> serial;    ///< per step, nn::Model + nn::train_step on the whole batch
  int peak_passes = 0;           ///< most passes this rank held activations for in the last step
};
/// Runs @p s (p = world size, v = 1) for real with PipelineStage, StageLink and PipelineRunner.
RunLosses train_tiny(Communicator& world, Ops& ops, const Schedule& s, int steps);

}  // namespace fivefold::ch04
