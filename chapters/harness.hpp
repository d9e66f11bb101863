// SPDX-License-Identifier: MIT
/// @file harness.hpp
/// @brief The chapter harness: one run_chapter() that every chapter main calls.
///
/// A chapter declares its steps (number, title, function) and its own options; run_chapter()
/// does everything else the same way for every chapter (docs/reference.md,
/// "Command line" and "The summary"):
/// - MPI start-up and the error policy of run_mpi_main() (a UsageError prints one `error:` line
///   on rank 0 and exits 2 on every rank; anything else aborts the job);
/// - the command line: the common options, the chapter's options, --help, --list-steps, and
///   --step K checked against the step list; every rank validates alike before communicating;
/// - the backend (make_backend), the Narrator, the Tracer (--trace);
/// - after the steps: the checks merged over ranks (worst error, AND of passed), the counted vs
///   predicted communication, a closing table on rank 0, --json and --trace written by rank 0;
/// - the exit status: 0 only when every check passed and every comm entry matched on EVERY rank.
///
/// What it leaves out: anything chapter-specific (model options, dumps); chapters that write a
/// --dump set ChapterSpec::has_dump and do it in a step.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "backends/backend.hpp"
#include "common/cli.hpp"
#include "common/narrate.hpp"
#include "common/summary.hpp"

namespace fivefold {

/// What a step sees: the backend, the narrator, the options, and the summary it fills.
class Context {
 public:
  /// Built by run_chapter(); steps receive it by reference.
  Context(Backend& backend, const Narrator& narrator, const CommonOptions& options, Summary& summary)
      : backend(backend), world(*backend.world), ops(*backend.ops), narrator(narrator), options(options),
        summary(summary) {}

  Backend& backend;               ///< the whole backend (name, description, device)
  Communicator& world;            ///< every rank of the job, group "world"
  Ops& ops;                       ///< compute on the backend's device
  const Narrator& narrator;       ///< rank-0 narration
  const CommonOptions& options;   ///< --backend, --step, --json, --quiet, ...
  Summary& summary;               ///< checks and comm entries of the run

  /// This rank in the world.
  int rank() const { return world.rank(); }
  /// Number of ranks in the world.
  int size() const { return world.size(); }

  /// Records a cross-check of this rank in the summary and narrates it (rank 0's result;
  /// the closing table shows the worst over ranks).
  void check(const CheckResult& r);
  /// Records counted vs predicted communication of this rank (checked on every rank).
  void comm(const CommEntry& e);
  /// Builds a CommEntry for @p op of @p group from counts @p counted (0 when absent).
  static CommEntry entry(const std::string& group, const std::string& op, const CommCounts& counted,
                         std::int64_t predicted_calls, std::int64_t predicted_payload_bytes);

  /// Every rank's @p line, gathered to every rank (uncounted bookkeeping). Collective.
  std::vector<std::string> gather(const std::string& line);
  /// Prints "rank r: <line of rank r>" for every rank on rank 0 (nothing with --quiet; the
  /// gather is skipped then, on every rank alike). Collective.
  void say_ranks(const std::string& line);
  /// Prints @p t on rank 0 unless --quiet (the tables a step shows along the way; the closing
  /// table of checks is printed even with --quiet).
  void show(const Table& t) const;
  /// The largest @p v over the ranks of the world (uncounted bookkeeping, e.g. a step's time:
  /// a parallel step ends when its slowest rank ends). Collective.
  double max_over_ranks(double v);
  /// The loss of every step of a parallel run next to the serial run's: shows the table
  /// @p title (step | @p label | serial | |diff|), records the losses as the summary's loss,
  /// and checks "loss per step == serial" (or @p check_name) to relative @p tolerance.
  void check_losses(const std::string& title, const std::string& label, const std::vector<double>& ours,
                    const std::vector<double>& serial, double tolerance,
                    const std::string& check_name = "loss per step == serial");
};

/// A chapter's prediction of what one rank needs (ChapterSpec::memory), checked before the run.
struct MemoryNeed {
  double bytes_per_rank = 0;  ///< predicted peak bytes of one rank
  std::string lower;          ///< the options that shrink it, e.g. "--batch, --seq or --dim"
};

/// One step of a chapter.
struct ChapterStep {
  int number = 0;                        ///< 1, 2, ... (--step K picks one)
  std::string title;                     ///< one line, printed in the step header
  std::string idea;                      ///< the new concept, shown by --list-steps
  std::function<void(Context&)> run;     ///< the step itself
};

/// Everything a chapter tells the harness.
struct ChapterSpec {
  std::string program;       ///< executable name, e.g. "ch00_collectives"
  std::string chapter;       ///< summary name, e.g. "00_collectives"
  std::string description;   ///< one paragraph for --help
  std::vector<ChapterStep> steps;  ///< in order; numbers 1..N
  /// Adds the chapter's own options (optional). Use ->check(kPositive) etc. for ranges.
  std::function<void(CLI::App&)> add_options;
  /// Validates the chapter's options after parsing (optional); throws UsageError naming the
  /// option and the fix. Runs on every rank alike, before any communication.
  std::function<void(const CommonOptions&, int world_size)> validate;
  /// The chapter's settings for Summary::config (optional).
  std::function<nlohmann::json()> config;
  /// The memory one rank will need (optional), from the chapter's formulas: before any work the
  /// harness refuses a run whose ranks on one machine would need more than it has available
  /// (or than --max-memory), naming the predicted and the available bytes and @c lower.
  std::function<MemoryNeed(int world_size)> memory;
  /// True when the chapter writes --dump; otherwise --dump is refused with a UsageError.
  bool has_dump = false;
};

/// Runs a chapter (see the file comment); returns the process exit status.
int run_chapter(int argc, char** argv, ChapterSpec& spec);

}  // namespace fivefold
