// SPDX-License-Identifier: MIT
// Chapter 07's options -> ProcessGrid, --print-groups without MPI, text renderings of a grid.
#include "chapters/07_hybrid_parallel/layout.hpp"

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "common/check.hpp"
#include "chapters/03_tensor_parallel/tp_layout.hpp"
#include "common/cli.hpp"

namespace fivefold::ch07 {

const char* const kDescription =
    "Chapter 07: hybrid parallelism. The world as a grid tp x sp x ep x dp x pp: rank <-> coordinates, the "
    "groups of every set of axes, their communicators (split), and where the groups land on nodes with the "
    "bytes each axis moves per training step; then DP x TP training of the model (chapters 02 and 03 on "
    "the grid's sub-communicators), checked against the serial model. --print-groups prints the groups as JSON "
    "without starting MPI.";

namespace {

/// An environment variable as an int, or -1 when unset or not a number.
int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return -1;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return *end == '\0' && x >= 0 ? static_cast<int>(x) : -1;
}

/// The first of @p names that is set (OpenMPI, PMIx, MPICH/PMI, Slurm), or @p fallback.
int launcher_value(std::initializer_list<const char*> names, int fallback) {
  for (const char* n : names)
    if (env_int(n) >= 0) return env_int(n);
  return fallback;
}

}  // namespace

void add_options(CLI::App& app, Options& o) {
  app.add_option("--tp", o.tp, "tensor-parallel degree")->default_str("1");
  app.add_option("--sp,--cp", o.sp, "sequence/context-parallel degree (--cp is the same axis)")->default_str("1");
  app.add_option("--ep", o.ep, "expert-parallel degree")->default_str("1");
  app.add_option("--dp", o.dp, "data-parallel degree")->default_str("fills the world: world/(tp*sp*ep*pp)");
  app.add_option("--pp", o.pp, "pipeline-parallel degree")->default_str("1");
  app.add_option("--order", o.order, "the five axes, fastest-varying (stride 1) first; cp = sp");
  app.add_option("--world", o.world, "ranks of the grid (a grid on paper when it differs from the job's)")
      ->default_str("the job's ranks")
      ->check(kPositive);
  app.add_flag("--print-groups", o.print_groups,
               "print the groups of every set of axes as JSON (docs/reference.md, 'The process grid'); no MPI");
  app.add_option("--gpus-per-node", o.gpus_per_node, "GPUs per node, for the placement of step 2")->check(kPositive);
  add_model_options(app, o.model);
  app.add_option("--bucket-mb", o.bucket_mb, "step 3: DP gradient bucket size in MiB (0: one bucket per unit)")
      ->check(kNonNegative);
  app.add_flag("--no-overlap", o.no_overlap, "step 3: all-reduce the DP buckets after the backward, not during it");
  app.add_option("--sp-mode", o.sp_mode, "steps 5-6: ring or zigzag attention on the sp axis, or megatron: sequence "
                 "parallelism inside the tp group (sp axis 1)")
      ->check(CLI::IsMember({"ring", "zigzag", "megatron"}));
  app.add_option("--microbatches", o.microbatches, "steps 4-6: microbatches per step (1F1B over the pp axis)")
      ->check(kPositive);
  app.add_option("--zero", o.zero, "step 4: 0 = bucketed all-reduce over dp, 1 = ZeRO-1 (reduce-scatter, "
                 "sharded AdamW, all-gather)")
      ->check(CLI::IsMember({0, 1}));
}

bool degrees_given(const Options& o) { return o.tp || o.sp || o.ep || o.dp || o.pp; }

ProcessGrid default_grid(int step, int world, int layers) {
  const bool even = world % 2 == 0, four = world % 4 == 0, eight = world % 8 == 0;
  int tp = 1, sp = 1, ep = 1, pp = 1;
  if (step == 4) tp = even ? 2 : 1, pp = world % 16 == 0 ? 4 : four ? 2 : 1;
  if (step == 5) sp = even ? 2 : 1, tp = four ? 2 : 1, pp = eight ? 2 : 1;
  if (step == 6) ep = even ? 2 : 1, sp = four ? 2 : 1, pp = eight ? 2 : 1;
  pp = std::min(pp, std::max(layers, 1));
  return ProcessGrid({tp, sp, ep, world / (tp * sp * ep * pp), pp}, kDefaultOrder, world);
}

std::string dp_tp_blocker(const Options& o, int job_size) {
  const ProcessGrid grid = make_grid(o, grid_world(o, job_size));
  if (grid.world_size() != job_size)
    return "--world " + std::to_string(grid.world_size()) + " is not the job's " + std::to_string(job_size) +
           " rank(s); drop --world";
  for (Axis a : {Axis::sp, Axis::ep, Axis::pp})
    if (grid.size(a) > 1)
      return "--" + std::string(axis_name(a)) + " " + std::to_string(grid.size(a)) +
             " is not 1 (steps 4-6 train that axis); set it to 1";
  if (o.model.experts > 0)
    return "--experts " + std::to_string(o.model.experts) + ": the TP model is dense; drop --experts";
  try {
    ch03::validate_tp(o.model, grid.size(Axis::tp), job_size);
  } catch (const UsageError& e) {
    return e.what();
  }
  if (o.model.steps < 1) return "--steps 0: step 3 trains; pass --steps 1 or more";
  if (o.model.batch < grid.size(Axis::dp))
    return "--batch " + std::to_string(o.model.batch) + " is smaller than dp " + std::to_string(grid.size(Axis::dp)) +
           " (every DP rank needs a sequence); raise --batch or lower dp";
  return "";
}

nlohmann::json grid_config(const Options& o, int job_size) {
  nlohmann::json j = o.model.to_json();
  const ProcessGrid grid = make_grid(o, grid_world(o, job_size));
  for (Axis a : kAllAxes) j[axis_name(a)] = grid.size(a);
  j["order"] = grid.order_name();
  j["world"] = grid.world_size();
  j["gpus_per_node"] = o.gpus_per_node;
  j["data"] = "stream";  // step 3: step k trains on sequences k*B .. k*B+B-1
  j["bucket_mb"] = o.bucket_mb;
  j["overlap"] = !o.no_overlap;
  return j;
}

int grid_world(const Options& o, int job_size) { return o.world ? *o.world : job_size; }

ProcessGrid make_grid(const Options& o, int world_size) {
  AxisArray sizes{o.tp.value_or(1), o.sp.value_or(1), o.ep.value_or(1), o.dp.value_or(1), o.pp.value_or(1)};
  if (!o.dp) {
    // TUTORIAL: as in Megatron-LM, the data-parallel degree is what is left of the world.
    const long long rest = 1LL * sizes[0] * sizes[1] * sizes[2] * sizes[4];
    const bool positive = sizes[0] >= 1 && sizes[1] >= 1 && sizes[2] >= 1 && sizes[4] >= 1;
    if (positive) {  // (a degree < 1 is reported by ProcessGrid with its own message)
      FIVEFOLD_USAGE_CHECK(rest <= world_size && world_size % rest == 0, "tp*sp*ep*pp = ", sizes[0], "*", sizes[1],
                           "*", sizes[2], "*", sizes[4], " = ", rest, " does not divide the world of ", world_size,
                           " rank(s), so dp cannot fill it; pick degrees whose product divides ", world_size);
      sizes[3] = static_cast<int>(world_size / rest);
    }
  }
  return ProcessGrid(sizes, o.order, world_size);
}

bool wants_print_groups(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--print-groups") == 0) return true;
  return false;
}

int print_groups_main(int argc, char** argv) {
  // No MPI here: the groups are arithmetic on the options. Under mpirun/srun every process
  // computes them and the one of rank 0 prints, so the output is one JSON object.
  const int rank = launcher_value({"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}, 0);
  try {
    Options o;
    CommonOptions common;  // accepted (and ignored) so any chapter command line works
    Cli cli("ch07_hybrid_parallel", kDescription);
    cli.add_common(common);
    add_options(cli.app(), o);
    if (auto status = cli.parse(argc, argv, rank == 0)) return *status;
    const int job = launcher_value({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}, 1);
    const ProcessGrid grid = make_grid(o, grid_world(o, job));
    if (rank == 0) std::cout << groups_json_text(grid) << std::flush;
    return 0;
  } catch (const UsageError& e) {
    if (rank == 0) std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error (rank %d): %s\n", rank, e.what());
    return 1;
  }
}

std::string show_group(const std::vector<int>& g, std::size_t max_members) {
  std::string out = "[";
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (i == max_members && g.size() > max_members + 1) {
      out += ",...," + std::to_string(g.back());
      break;
    }
    out += (i ? "," : "") + std::to_string(g[i]);
  }
  return out + "]";
}

std::string show_groups(const std::vector<std::vector<int>>& groups, std::size_t max_groups) {
  std::string out;
  for (std::size_t i = 0; i < groups.size() && i < max_groups; ++i) out += (i ? " " : "") + show_group(groups[i]);
  if (groups.size() > max_groups) out += " ... (" + std::to_string(groups.size()) + " groups)";
  return out;
}

std::vector<Axis> active_axes(const ProcessGrid& grid) {
  std::vector<Axis> out;
  for (Axis a : grid.order())
    if (grid.size(a) > 1) out.push_back(a);
  return out;
}

std::vector<std::string> grid_figure(const ProcessGrid& grid) {
  const std::vector<Axis> active = active_axes(grid);
  const int width = static_cast<int>(std::to_string(grid.world_size() - 1).size());
  auto bracket = [&](const std::vector<int>& g) {
    std::string s = "[";
    for (std::size_t i = 0; i < g.size(); ++i) {
      char cell[16];
      std::snprintf(cell, sizeof cell, "%*d", width, g[i]);
      s += (i ? " " : "") + std::string(cell);
    }
    return s + "]";
  };
  if (active.empty()) return {"[0]  (one rank)"};
  const Axis fast = active.front();
  const std::vector<std::vector<int>> fast_groups = grid.groups(AxisSet{fast});
  if (active.size() == 1) return {std::string(axis_name(fast)) + " | " + bracket(fast_groups.front())};
  const Axis slow = active.back();
  std::vector<std::string> lines;
  for (int s = 0; s < grid.size(slow); ++s) {
    char label[32];
    std::snprintf(label, sizeof label, "%s %*d | ", axis_name(slow),
                  static_cast<int>(std::to_string(grid.size(slow) - 1).size()), s);
    std::string line = label;
    bool first = true;
    for (const auto& g : fast_groups) {
      if (grid.coord(g.front(), slow) != s) continue;
      line += (first ? "" : " ") + bracket(g);
      first = false;
    }
    lines.push_back(line);
  }
  return lines;
}

}  // namespace fivefold::ch07
