// SPDX-License-Identifier: MIT
// The exercise checks: integer-valued gradients (exact sums in any order), every rank checked,
// rank 0 prints the verdict and a hint.
#include "chapters/02_data_parallel/exercises/check.hpp"

#include <cmath>
#include <string>

#include "backends/backend.hpp"
#include "backends/runtime.hpp"

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

}  // namespace

int check_bucket_reduce(int argc, char** argv, PostReadyBucketFn fn) {
  return run_mpi_main(argc, argv, [fn](int, char**) {
    Backend b = make_backend("cpu");
    Communicator& world = *b.world;
    const int n = world.size(), r = world.rank();
    const FlatLayout layout = seven_units();
    const std::vector<Bucket> buckets = make_buckets(layout, 30);  // several buckets of 1-3 units
    Tensor grads = b.ops->zeros({layout.numel()});
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
    return exercise_verdict(
        world, "bucket reduce", problem,
        "units finish from the last to the first, so a bucket is complete when its LOWEST unit "
        "(first_unit) is done; then iall_reduce its slice grads.flat(offset, numel) (README, step 2)");
  });
}

int check_zero1_update(int argc, char** argv, Zero1UpdateFn fn) {
  return run_mpi_main(argc, argv, [fn](int, char**) {
    Backend b = make_backend("cpu");
    Communicator& world = *b.world;
    Ops& ops = *b.ops;
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
    return exercise_verdict(
        world, "ZeRO-1 update", problem,
        "three lines: reduce_scatter the gradient into grad_shard; opt.step(); copy your slice of params "
        "into send and all_gather it back into params (README, step 3)");
  });
}

}  // namespace fivefold::ch02
