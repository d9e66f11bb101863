// SPDX-License-Identifier: MIT
// ch07_hybrid_parallel: the process grid of hybrid parallelism. Ranks as coordinates on the
// axes tp, sp (cp), ep, dp, pp; the groups of every set of axes and their communicators; where
// the groups land on nodes and what each axis costs; DP x TP training with chapters 02 and 03;
// 3D, 4D and 5D training with chapters 02-06 on one grid; a real run's bytes on nodes.
// Leaves out: topology discovery (nodes are assumed to hold consecutive ranks), Ulysses on the
// sp axis, ring attention and Megatron-SP at once, ZeRO-2/3 with pp.
// Run: mpirun -np 4 build/cpu/bin/ch07_hybrid_parallel                  (dp fills the world: dp 4)
//      mpirun -np 8 build/cpu/bin/ch07_hybrid_parallel --tp 2 --pp 2
//      mpirun -np 4 build/cpu/bin/ch07_hybrid_parallel --step 3 --tp 2      (DP x TP training)
//      mpirun -np 16 build/cpu/bin/ch07_hybrid_parallel --step 4 --tp 2 --pp 4 --layers 4   (3D)
//      build/cpu/bin/ch07_hybrid_parallel --world 16 --tp 2 --pp 4 --print-groups   (no MPI)
#include "chapters/01_reference_model/costs.hpp"
#include "backends/runtime.hpp"
#include "chapters/07_hybrid_parallel/hybrid_run.hpp"
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
      {3, "DP x TP training", "TP model on the tp groups, bucketed gradient all-reduce on the dp groups; == serial",
       [&](Context& c) { ch07::step3_dp_tp(c, o); }},
      {4, "DP x TP x PP (3D)", "1F1B over pp, TP in each stage, bucketed DDP or ZeRO-1 over dp; == serial; traffic per group",
       [&](Context& c) { ch07::step4_3d(c, o); }},
      {5, "+ SP (4D)", "ring/zigzag on the sp axis or Megatron-SP inside tp, with pp and dp; == serial",
       [&](Context& c) { ch07::step5_4d(c, o); }},
      {6, "+ EP (5D)", "experts on ep; dense grads over sp-ep-dp, experts over sp-dp; capacity by prefix sum; == serial",
       [&](Context& c) { ch07::step6_5d(c, o); }},
      {7, "placement of a real run", "counted payloads on a wire model (ring successor, all-to-all shares): bytes inside vs across nodes",
       [&](Context& c) { ch07::step7_wire(c, o); }},
  };
  spec.has_dump = true;
  int step_asked = 0;  // steps 1 and 2 are arithmetic on paper: they allocate no model
  spec.memory = [&](int) {  // the serial reference and the parallel model side by side, at most
    if (step_asked == 1 || step_asked == 2) return MemoryNeed{0, ""};
    return MemoryNeed{2 * ch01::training_bytes(o.model), "--batch, --seq, --dim, --ffn, --vocab or --layers"};
  };
  spec.add_options = [&](CLI::App& app) { ch07::add_options(app, o); };
  spec.validate = [&](const CommonOptions& common, int world_size) {
    step_asked = common.step;
    o.model.validate();
    ch07::make_grid(o, ch07::grid_world(o, world_size));  // throws UsageError for a bad layout
    FIVEFOLD_USAGE_CHECK(common.dump.empty() || common.step == 0 || common.step == 3, "--dump is written by step 3 "
                         "(training); --step ", common.step, " writes none: use --step 3 or drop --dump");
    // Asked for training by name (--step 3 or --dump): a layout it cannot train is an error;
    // in a run of all steps, step 3 says why it skips.
    if (common.step >= 4 && common.step <= 7) {  // asked by name: a layout it cannot train is an error
      std::string why = ch07::step_blocker(o, common.step == 7 ? 4 : common.step, world_size);
      for (int s : {5, 6})
        if (common.step == 7 && !why.empty() && ch07::step_blocker(o, s, world_size).empty()) why = "";
      FIVEFOLD_USAGE_CHECK(why.empty(), "step ", common.step, " cannot run: ", why);
    }
    if (common.step == 3 || !common.dump.empty()) {
      const std::string why = ch07::dp_tp_blocker(o, world_size);
      FIVEFOLD_USAGE_CHECK(why.empty(), "step 3 (DP x TP training) cannot run: ", why);
    }
  };
  spec.config = [&] { return ch07::grid_config(o, MpiSession::world_size()); };
  return run_chapter(argc, argv, spec);
}
