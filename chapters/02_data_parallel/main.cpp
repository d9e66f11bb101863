// SPDX-License-Identifier: MIT
// ch02_data_parallel: every rank holds the model (or a shard of it) and a slice of the global
// batch; the result equals serial training on the whole global batch. Naive DDP, gradient
// buckets overlapped with the backward, ZeRO-1/2/3 (FSDP), their memory and communication
// against the formulas, and inference on replicas. World size = data-parallel degree.
// Leaves out: gradient accumulation, mixed precision, offload, MoE models (see the README).
// Run: mpirun -np 4 build/cpu/bin/ch02_data_parallel                      (all steps, narrated)
//      mpirun -np 4 build/cpu/bin/ch02_data_parallel --zero 3 --quiet --json z3.json   (a plain ZeRO-3 run)
//      mpirun -np 3 build/cpu/bin/ch02_data_parallel --zero 2 --dump /tmp/ch02     (full tensors, any stage)
#include "chapters/01_reference_model/costs.hpp"
#include "chapters/02_data_parallel/steps.hpp"
#include "common/check.hpp"

using namespace fivefold;

int main(int argc, char** argv) {
  ch02::Lab lab;
  ch02::Options& o = lab.o;
  o.cfg.steps = 5;  // a few AdamW steps are enough to compare with serial
  int dp = 1;       // the world size, known once validate() runs
  ChapterSpec spec;
  spec.program = "ch02_data_parallel";
  spec.chapter = "02_data_parallel";
  spec.description =
      "Chapter 02: data parallelism. Each rank trains on its slice of the global batch and the result equals "
      "serial training on the whole batch: naive DDP, bucketed all-reduce overlapped with the backward, ZeRO-1 "
      "(optimizer states sharded), ZeRO-2 (+ gradients), ZeRO-3/FSDP (+ parameters, gathered per layer), memory and "
      "communication per stage vs the formulas, and inference on replicas. --zero K runs stage K only.";
  spec.steps = {
      {1, "naive DDP", "replicas, B/n sequences each, all-reduce every gradient after the backward",
       [&](Context& c) { ch02::step1_naive_ddp(c, lab); }},
      {2, "buckets and overlap", "iall_reduce per bucket while the backward goes on; hidden communication",
       [&](Context& c) { ch02::step2_buckets(c, lab); }},
      {3, "ZeRO-1", "optimizer states sharded: reduce-scatter, update the shard, all-gather",
       [&](Context& c) { ch02::step3_zero1(c, lab); }},
      {4, "ZeRO-2", "gradients sharded too: reduce-scatter each unit right after its backward",
       [&](Context& c) { ch02::step4_zero2(c, lab); }},
      {5, "ZeRO-3 / FSDP", "parameters sharded: gather each unit before use, free after, prefetch the next",
       [&](Context& c) { ch02::step5_zero3(c, lab); }},
      {6, "memory and communication", "bytes per rank and per step, measured and counted vs the formulas",
       [&](Context& c) { ch02::step6_costs(c, lab); }},
      {7, "inference on replicas", "requests spread over replicas: throughput scales, latency does not",
       [&](Context& c) { ch02::step7_inference(c, lab); }},
  };
  spec.add_options = [&](CLI::App& app) {
    add_model_options(app, o.cfg, /*with_moe=*/false);
    app.add_option("--zero", o.zero, "ZeRO stage of a plain run (runs only that stage's step; -1 = every step)")
        ->check(CLI::Range(-1, 3).description("-1..3"))
        ->capture_default_str();
    app.add_option("--bucket-mb", o.bucket_mb, "stage-0 gradient bucket size in MiB (0 = naive, per parameter)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_flag("--no-overlap", o.no_overlap, "reduce the buckets after the backward instead of during it");
    app.add_flag("--no-prefetch", o.no_prefetch, "ZeRO-3: gather a unit only when it runs (one workspace)");
    app.add_option("--data", o.data, "training batches: stream (a fresh batch each step) or fixed (the same one)")
        ->check(CLI::IsMember({"stream", "fixed"}))
        ->capture_default_str();
    app.add_option("--requests", o.requests, "inference requests in step 7")->check(kPositive)->capture_default_str();
    app.add_option("--gen-tokens", o.gen_tokens, "tokens generated per request in step 7")
        ->check(kPositive)
        ->capture_default_str();
  };
  spec.validate = [&](const CommonOptions& opts, int world) {
    dp = world;
    o.cfg.validate();
    FIVEFOLD_USAGE_CHECK(opts.dump.empty() || opts.step <= 5, "--dump ", opts.dump, " is written by the first "
                         "training run (steps 1-5); run all steps or one of --step 1..5 with --dump");
    FIVEFOLD_USAGE_CHECK(o.cfg.steps >= 1, "--steps ", o.cfg.steps, ": data-parallel training needs at least one "
                         "step; pass --steps 1 or more");
    // TUTORIAL: every rank needs at least one sequence of the global batch.
    FIVEFOLD_USAGE_CHECK(o.cfg.batch >= world, "--batch ", o.cfg.batch, " is smaller than the ", world,
                         " data-parallel ranks: every rank needs at least one sequence; pass --batch >= ", world,
                         " or run fewer ranks");
    FIVEFOLD_USAGE_CHECK(o.bucket_mb <= 1024, "--bucket-mb ", o.bucket_mb, " is larger than 1 GiB; pass a smaller size");
  };
  spec.config = [&] { return ch02::config_json(o, dp); };
  spec.has_dump = true;
  spec.memory = [&](int) {  // the serial reference and the parallel model side by side, at most
    return MemoryNeed{2 * ch01::training_bytes(o.cfg), "--batch, --seq, --dim, --ffn, --vocab or --layers"};
  };
  return run_chapter(argc, argv, spec);
}
