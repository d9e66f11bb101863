// SPDX-License-Identifier: MIT
// ch00_collectives: collectives written by hand on point-to-point messages, checked against
// the library (MPI or NCCL), and the cost model that predicts their traffic.
// Leaves out: pipelined/segmented rings, trees for small messages, hierarchical collectives.
// Run: mpirun -np 4 build/cpu/bin/ch00_collectives            (all steps, narrated)
//      mpirun -np 4 build/cpu/bin/ch00_collectives --list-steps
//      mpirun -np 3 build/cpu/bin/ch00_collectives --count 1001 --quiet --json ch00.json
#include "chapters/00_collectives/steps.hpp"
#include "common/check.hpp"

using namespace fivefold;

int main(int argc, char** argv) {
  ch00::Options o;
  ChapterSpec spec;
  spec.program = "ch00_collectives";
  spec.chapter = "00_collectives";
  spec.description =
      "Chapter 00: collectives by hand. A ring all-reduce, all-gather, reduce-scatter, a tree broadcast and a "
      "pairwise all-to-all written on send/recv, each checked against the library, with the bytes they send "
      "counted and compared with the cost model.";
  spec.steps = {
      {1, "send/recv and the ring", "sendrecv with both neighbours; a token around the ring",
       [&](Context& c) { ch00::step1_ring(c, o); }},
      {2, "ring all-reduce by hand", "all-reduce = reduce-scatter + all-gather, chunk by chunk",
       [&](Context& c) { ch00::step2_all_reduce(c, o); }},
      {3, "all-gather, reduce-scatter, broadcast, all-to-all", "each collective from point-to-point messages",
       [&](Context& c) { ch00::step3_collectives(c, o); }},
      {4, "the cost model", "bytes per rank 2(n-1)/n*S vs counted; alpha-beta; algbw and busbw",
       [&](Context& c) { ch00::step4_cost_model(c, o); }},
  };
  spec.add_options = [&](CLI::App& app) {
    app.add_option("--count", o.count, "fp32 elements per buffer (0 allowed)")->check(kNonNegative);
    app.add_option("--iters", o.iters, "timing repetitions per size in step 4")->check(kPositive);
    app.add_option("--seed", o.seed, "seed of the random buffers")->check(kNonNegative);
  };
  spec.validate = [&](const CommonOptions&, int) {
    constexpr std::int64_t kMaxCount = std::int64_t{1} << 28;  // 1 GiB per buffer; MPI counts are int
    FIVEFOLD_USAGE_CHECK(o.count <= kMaxCount, "--count ", o.count, " is too large: at most ", kMaxCount,
                         " elements (1 GiB per buffer); pass a smaller --count");
    FIVEFOLD_USAGE_CHECK(o.iters <= 100000, "--iters ", o.iters, " is too many; pass at most 100000");
  };
  spec.config = [&] { return nlohmann::json{{"count", o.count}, {"iters", o.iters}, {"seed", o.seed}}; };
  spec.memory = [&](int world) {  // a send and a receive buffer, a reference, and all-gather's world blocks
    return MemoryNeed{4.0 * static_cast<double>(o.count) * (world + 4), "--count"};
  };
  return run_chapter(argc, argv, spec);
}
