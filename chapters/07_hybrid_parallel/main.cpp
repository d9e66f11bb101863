// SPDX-License-Identifier: MIT
// ch07_hybrid_parallel: the process grid of hybrid parallelism. Ranks as coordinates on the
// axes tp, sp (cp), ep, dp, pp; the groups of every set of axes and their communicators; where
// the groups land on nodes and what each axis costs. Step 3 (DP x TP training of the model)
// arrives with chapters 02 and 03.
// Leaves out: training (step 3), topology discovery (nodes are assumed to hold consecutive ranks).
// Run: mpirun -np 4 build/cpu/bin/ch07_hybrid_parallel                  (dp fills the world: dp 4)
//      mpirun -np 8 build/cpu/bin/ch07_hybrid_parallel --tp 2 --pp 2
//      build/cpu/bin/ch07_hybrid_parallel --world 16 --tp 2 --pp 4 --print-groups   (no MPI)
#include "backends/runtime.hpp"
#include "chapters/07_hybrid_parallel/steps.hpp"
#include "common/check.hpp"

using namespace fivefold;

int main(int argc, char** argv) {
  // --print-groups is arithmetic on the options: it runs without MPI, before the harness.
  if (ch07::wants_print_groups(argc, argv)) return ch07::print_groups_main(argc, argv);

  ch07::Options o;
  ChapterSpec spec;
  spec.program = "ch07_hybrid_parallel";
  spec.chapter = "07_hybrid_parallel";
  spec.description = ch07::kDescription;
  spec.steps = {
      {1, "the process grid and its communicators",
       "rank <-> coordinates (leftmost axis fastest); groups of any set of axes; split per group",
       [&](Context& c) { ch07::step1_grid(c, o); }},
      {2, "placement on nodes", "which groups cross nodes; bytes per axis per step; innermost = heaviest",
       [&](Context& c) { ch07::step2_placement(c, o); }},
  };
  spec.add_options = [&](CLI::App& app) { ch07::add_options(app, o); };
  spec.validate = [&](const CommonOptions&, int world_size) {
    o.model.validate();
    ch07::make_grid(o, ch07::grid_world(o, world_size));  // throws UsageError for a bad layout
  };
  spec.config = [&] {
    nlohmann::json j = o.model.to_json();
    const ProcessGrid grid = ch07::make_grid(o, ch07::grid_world(o, MpiSession::world_size()));
    for (Axis a : kAllAxes) j[axis_name(a)] = grid.size(a);
    j["order"] = grid.order_name();
    j["world"] = grid.world_size();
    j["gpus_per_node"] = o.gpus_per_node;
    return j;
  };
  return run_chapter(argc, argv, spec);
}
