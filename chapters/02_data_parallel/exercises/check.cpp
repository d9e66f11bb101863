// SPDX-License-Identifier: MIT
// The exercise checks: integer-valued gradients (exact sums in any order), every rank checked,
// rank 0 prints the verdict (and, asked with --hint 1|2, the graded hints).
#include "chapters/02_data_parallel/exercises/check.hpp"

#include <cmath>
#include <string>

#include "chapters/exercise.hpp"

namespace fivefold::ch02 {

namespace {

/// Gradient element i of rank r: a small integer, different on every rank and element.
float grad_value(int r, std::int64_t i) { return static_cast<float>((r + 1) * (i % 7) - 3); }

/// Seven units of uneven sizes (one parameter each), in one flat buffer without padding.
FlatLayout seven_units() {
  std::vector<Unit> units;
  for (int u = 0; u < 7; ++u) {
    const std::int64_t len = 5 + 3 * ((u * 5) % 7);
    units.push_back(Unit{"unit" + std::to_string(u), {nn::ParamSpec{"unit" + std::to_string(u) + ".w", {len}}}, len});
  }
  return FlatLayout(units, 1, false);
}

const char* const kHintBucket1 =
    "the idea and the API\n"
    "  The backward writes unit u's gradients last-to-first; a bucket's sum may start only when no\n"
    "  unit of it will change any more, and should start at once then, so that it travels while the\n"
    "  earlier units' backward runs. Which of its units is done LAST?\n"
    "  API: Bucket {first_unit, last_unit, offset, numel} (chapters/02_data_parallel/dp_trainer.hpp);\n"
    "  Communicator::iall_reduce(buf) returns a Request to keep until waited for\n"
    "  (backends/communicator.hpp); Tensor::flat(offset, numel) is a view (common/tensor.hpp).";
const char* const kHintBucket2 =
    "the rule\n"
    "  Bucket b is complete when u == buckets[b].first_unit; then\n"
    "  pending.push_back(comm.iall_reduce(view)) with view = grads.flat(offset, numel).";
const char* const kHintZero1 =
    "the idea and the API\n"
    "  Each rank needs the SUM of the gradients only for its own slice (its optimizer states live\n"
    "  there), updates that slice, and every rank then needs every updated slice back.\n"
    "  API: Communicator::reduce_scatter(in, out) and all_gather(in, out) (backends/communicator.hpp;\n"
    "  in and out must not alias), nn::AdamW::step (nn/adamw.hpp), Tensor::flat and copy_from\n"
    "  (common/tensor.hpp).";
const char* const kHintZero1b =
    "the rule\n"
    "  comm.reduce_scatter(grads, grad_shard); opt.step(); send.copy_from(params.flat(r*s, s));\n"
    "  comm.all_gather(send, params).";

}  // namespace

int check_bucket_reduce(int argc, char** argv, PostReadyBucketFn fn) {
  return run_exercise(argc, argv, kHintBucket1, kHintBucket2, [fn](Communicator& world, Ops& ops) {
    const int n = world.size(), r = world.rank();
    const FlatLayout layout = seven_units();
    const std::vector<Bucket> buckets = make_buckets(layout, 30);  // several buckets of 1-3 units
    Tensor grads = ops.zeros({layout.numel()});
    std::vector<std::unique_ptr<Request>> pending;
    std::string problem;
    for (int u = layout.num_units() - 1; u >= 0 && problem.empty(); --u) {
      // The "backward" of unit u: its gradients become known now, not before.
      for (std::int64_t i = 0; i < layout.unit(u).numel; ++i)
        grads.at<float>(layout.offset(u) + i) = grad_value(r, layout.offset(u) + i);
      fn(world, grads, buckets, u, pending);
      std::size_t complete = 0;  // buckets whose units are all done now
      for (const Bucket& k : buckets) complete += k.first_unit >= u ? 1 : 0;
      if (pending.size() != complete)
        problem = "after unit " + std::to_string(u) + "'s backward " + std::to_string(pending.size()) +
                  " bucket(s) were posted, but exactly " + std::to_string(complete) + " are complete";
    }
    for (auto& req : pending) req->wait();
    for (std::int64_t i = 0; i < layout.numel() && problem.empty(); ++i) {
      float want = 0;
      for (int q = 0; q < n; ++q) want += grad_value(q, i);
      if (grads.at<float>(i) != want)
        problem = "gradient " + std::to_string(i) + " is " + std::to_string(grads.at<float>(i)) + ", expected " +
                  std::to_string(want) + " (the sum over ranks)";
    }
    return verdict(world, "bucket reduce", problem.empty() ? problem : "rank " + std::to_string(r) + ": " + problem);
  });
}

int check_zero1_update(int argc, char** argv, Zero1UpdateFn fn) {
  return run_exercise(argc, argv, kHintZero1, kHintZero1b, [fn](Communicator& world, Ops& ops) {
    const int n = world.size(), r = world.rank();
    const std::int64_t s = 11, padded = s * n;
    nn::AdamWConfig cfg;
    cfg.lr = 0.01f;
    cfg.weight_decay = 0.1f;
    Tensor params = ops.empty({padded}), grads = ops.empty({padded});
    for (std::int64_t i = 0; i < padded; ++i) {
      params.at<float>(i) = 0.01f * static_cast<float>(i % 13) - 0.05f;
      grads.at<float>(i) = grad_value(r, i);
    }
    // The reference: the full sum on every rank, then AdamW on the whole buffer.
    Tensor ref = params.clone(), full = grads.clone();
    world.all_reduce(full);
    nn::AdamW whole(ops, cfg);
    whole.add(ref, full);
    whole.step();
    // Yours: the optimizer sees only this rank's slice.
    Tensor grad_shard = ops.zeros({s}), send = ops.zeros({s});
    nn::AdamW opt(ops, cfg);
    opt.add(params.flat(r * s, s), grad_shard);
    fn(world, params, grads, grad_shard, send, opt);
    std::string problem;
    for (std::int64_t i = 0; i < padded && problem.empty(); ++i) {
      const float got = params.at<float>(i), want = ref.at<float>(i);
      if (!(std::fabs(got - want) <= 1e-6f * std::fabs(want) + 1e-9f))
        problem = "parameter " + std::to_string(i) + " (slice of rank " + std::to_string(i / s) + ") is " +
                  std::to_string(got) + ", expected " + std::to_string(want);
    }
    return verdict(world, "ZeRO-1 update", problem.empty() ? problem : "rank " + std::to_string(r) + ": " + problem);
  });
}

}  // namespace fivefold::ch02
