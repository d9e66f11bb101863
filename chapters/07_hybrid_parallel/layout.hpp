// SPDX-License-Identifier: MIT
/// @file layout.hpp
/// @brief Chapter 07's options and the layout they describe: degrees -> ProcessGrid (dp fills
/// the world unless given), --print-groups without MPI, and small text renderings of a grid.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/model_config.hpp"
#include "common/process_grid.hpp"

namespace fivefold::ch07 {

/// The chapter's options (degrees left out are std::nullopt; see make_grid()).
struct Options {
  std::optional<int> tp;        ///< --tp (default 1)
  std::optional<int> sp;        ///< --sp or --cp (default 1)
  std::optional<int> ep;        ///< --ep (default 1)
  std::optional<int> dp;        ///< --dp (default: fills the world, world / (tp*sp*ep*pp))
  std::optional<int> pp;        ///< --pp (default 1)
  std::string order = kDefaultOrder;  ///< --order, fastest axis first
  std::optional<int> world;     ///< --world N: the grid's size (default: the job's ranks)
  bool print_groups = false;    ///< --print-groups: print the groups as JSON (docs/reference.md) and exit
  int gpus_per_node = 8;        ///< --gpus-per-node (step 2)
  ModelConfig model;            ///< --vocab --dim ... (step 2's traffic, step 3's model)
  double bucket_mb = 0.05;      ///< --bucket-mb (step 3: DP gradient bucket size; the tiny model: 3 buckets)
  bool no_overlap = false;      ///< --no-overlap (step 3: DP all-reduce after the backward)
  std::string sp_mode = "ring"; ///< --sp-mode ring|zigzag (the sp axis) or megatron (inside tp): steps 5, 6
  int microbatches = 2;         ///< --microbatches m (1F1B over pp): steps 4-6
  int zero = 0;                 ///< --zero 0|1 (step 4: bucketed DDP or ZeRO-1 over dp)
};

/// True when the run names any degree (--tp --sp --ep --dp --pp): steps 4-6 then train exactly
/// that grid; otherwise each picks its own example for the job's size (default_grid()).
bool degrees_given(const Options& o);

/// The example grid step @p step (4, 5, 6) trains on @p world ranks when no degree is given:
/// 4: tp 2, pp 4 (16 ranks) or 2, dp the rest; 5: sp 2, tp 2, pp 2 as the world allows;
/// 6: ep 2, sp 2, pp 2 as the world allows; pp never above @p layers. Order tp-sp-ep-dp-pp.
ProcessGrid default_grid(int step, int world, int layers);

/// The --help paragraph.
extern const char* const kDescription;

/// Adds the chapter's options (degrees, --order, --world, --print-groups, --gpus-per-node and
/// the model options) bound to @p o.
void add_options(CLI::App& app, Options& o);

/// The grid's world size: --world when given, else @p job_size (the ranks of the job).
int grid_world(const Options& o, int job_size);

/// The grid of @p world_size ranks the options describe: a degree left out is 1, except dp,
/// which fills the world (world / (tp*sp*ep*pp)). Throws UsageError (one line) for a degree
/// < 1, degrees whose product is not @p world_size (or does not divide it, when dp fills),
/// and a bad --order.
ProcessGrid make_grid(const Options& o, int world_size);

/// Why step 3 (DP x TP training) cannot run this layout on a job of @p job_size ranks, as one
/// clause naming the value and the fix, or "" when it can: the grid must be the job's, sp, ep
/// and pp must be 1, the model dense, tp valid for it (chapter 03's validate_tp), steps >= 1
/// and B >= dp.
std::string dp_tp_blocker(const Options& o, int job_size);

/// The run's settings (the dump's config.json and the --json "config", docs/reference.md): the
/// model's keys, the
/// five degrees, order, world, gpus_per_node, and step 3's data, bucket_mb and overlap.
nlohmann::json grid_config(const Options& o, int job_size);

/// True when argv holds --print-groups (checked before MPI starts).
bool wants_print_groups(int argc, char** argv);

/// `ch07_hybrid_parallel --print-groups`: parses the same options, prints groups_json_text()
/// once and returns the exit status. Starts no MPI; under a launcher only the process of rank 0
/// (OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK or SLURM_PROCID) prints. A bad layout prints one
/// `error:` line (rank 0) and returns 2.
int print_groups_main(int argc, char** argv);

/// "[0,1]" (or "[0,1,...,15]" shortened to @p max_members members).
std::string show_group(const std::vector<int>& g, std::size_t max_members = 16);
/// "[0,1] [2,3] ..." with at most @p max_groups groups, then "... (N groups)".
std::string show_groups(const std::vector<std::vector<int>>& groups, std::size_t max_groups = 8);

/// The grid as a small figure, one line per coordinate of the slowest axis of size > 1:
/// "pp 0 | [ 0  1] [ 2  3]" — brackets hold a group of the fastest axis of size > 1.
std::vector<std::string> grid_figure(const ProcessGrid& grid);

/// The axes of size > 1, in the grid's order (fastest first).
std::vector<Axis> active_axes(const ProcessGrid& grid);

}  // namespace fivefold::ch07
