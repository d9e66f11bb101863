// SPDX-License-Identifier: MIT
// Step 7: inference on replicas. Serving needs no gradients and no optimizer: every rank holds
// a full replica and takes every n-th request (round robin); the replicas never communicate.
// Throughput (requests per second of the whole group) grows with n; the latency of one request
// does not — it still runs on one replica, at one replica's speed. Measured: rank 0 alone serves
// all requests first (the 1-replica baseline), then all ranks serve them together.
// Check: the tokens every request gets are the same whichever replica served it.
// Run: mpirun -np 4 build/cpu/bin/ch02_data_parallel --step 7 --requests 32 --gen-tokens 16
#include <algorithm>

#include "chapters/02_data_parallel/steps.hpp"
#include "common/clock.hpp"
#include "common/narrate.hpp"
#include "nn/model.hpp"

namespace fivefold::ch02 {

namespace {

/// The prompt of request @p i: the first P tokens of sequence i of a request stream.
Tensor prompt_of(const Options& o, int i, int P) {
  const nn::Batch b = nn::synthetic_batch(o.cfg.seed + 1, o.cfg.vocab, 1, o.cfg.seq, i);
  const std::vector<std::int32_t> all = b.inputs.to_ivector();
  return Tensor::from_vector(std::vector<std::int32_t>(all.begin(), all.begin() + P), {1, P});
}

void uncounted_barrier(Communicator& c) {
  Uncounted quiet(c);
  c.barrier();
}

}  // namespace

void step7_inference(Context& ctx, Lab& lab) {
  if (skipped(ctx, lab, 7)) return;
  const Options& o = lab.o;
  const int n = ctx.size(), r = ctx.rank(), R = o.requests;
  const int P = std::min(o.cfg.seq, 8);
  nn::Model replica(ctx.ops, o.cfg);  // TUTORIAL: a full replica per rank, the same weights everywhere
  replica.generate(prompt_of(o, 0, P), 1, true);  // warm-up (allocations)
  std::vector<std::string> mine(R);
  // 1 replica: rank 0 serves every request; the others wait.
  double t1 = 0;
  std::vector<std::int32_t> ref_tokens;
  if (r == 0) {
    const double t0 = now_seconds();
    for (int i = 0; i < R; ++i) {
      const std::vector<std::int32_t> out = replica.generate(prompt_of(o, i, P), o.gen_tokens, true).to_ivector();
      ref_tokens.insert(ref_tokens.end(), out.begin(), out.end());
    }
    t1 = now_seconds() - t0;
  }
  uncounted_barrier(ctx.world);
  // n replicas: request i goes to rank i % n.
  std::vector<std::int32_t> my_tokens;
  const double t0 = now_seconds();
  int served = 0;
  for (int i = r; i < R; i += n, ++served) {
    const std::vector<std::int32_t> out = replica.generate(prompt_of(o, i, P), o.gen_tokens, true).to_ivector();
    std::string s;
    for (std::int32_t t : out) s += std::to_string(t) + ",";
    mine[i] = s;
  }
  const double tn_mine = now_seconds() - t0;
  const double tn = ctx.max_over_ranks(tn_mine);  // the group is done when its slowest replica is
  const double latency_n = ctx.max_over_ranks(served ? tn_mine / served : 0.0);
  // Gather every request's tokens (bookkeeping) and compare with rank 0's single-replica run.
  std::string line;
  for (int i = r; i < R; i += n) line += std::to_string(i) + ":" + mine[i] + ";";
  const std::vector<std::string> all = ctx.gather(line);
  std::vector<std::string> by_request(R);
  for (const std::string& l : all) {
    std::size_t at = 0;
    while (at < l.size()) {
      const std::size_t colon = l.find(':', at), semi = l.find(';', at);
      by_request[std::stoi(l.substr(at, colon - at))] = l.substr(colon + 1, semi - colon - 1);
      at = semi + 1;
    }
  }
  std::vector<float> got, want;
  if (r == 0) {
    const int per = P + o.gen_tokens;
    for (int i = 0; i < R; ++i) {
      std::size_t at = 0;
      for (int j = 0; j < per; ++j) {
        const std::size_t comma = by_request[i].find(',', at);
        got.push_back(static_cast<float>(std::stoi(by_request[i].substr(at, comma - at))));
        want.push_back(static_cast<float>(ref_tokens[i * per + j]));
        at = comma + 1;
      }
    }
  } else {  // the same check on every rank: compare with itself (rank 0 holds the reference)
    got.assign(1, 0.0f);
    want.assign(1, 0.0f);
  }
  ctx.check(compare("inference: tokens from " + std::to_string(n) + " replica(s) == one replica", Tensor::from_vector(got, {std::int64_t(got.size())}),
                    Tensor::from_vector(want, {std::int64_t(want.size())}), 0.0));
  const double T1 = ctx.max_over_ranks(t1);
  Table t{"Serving " + std::to_string(R) + " requests (prompt " + std::to_string(P) + ", +" + std::to_string(o.gen_tokens) +
              " tokens, KV cache)",
          {"replicas", "wall time (ms)", "throughput (req/s)", "latency per request (ms)", "speed-up"}, {}};
  t.add({"1", fmt("%.2f", T1 * 1e3), fmt("%.1f", R / T1), fmt("%.3f", T1 / R * 1e3), "1.00"});
  t.add({std::to_string(n), fmt("%.2f", tn * 1e3), fmt("%.1f", R / tn), fmt("%.3f", latency_n * 1e3),
         fmt("%.2f", T1 / tn)});
  ctx.narrator.table(t);
  ctx.narrator.say("Throughput grows with the replicas only as far as there are cores (or GPUs) to run them: with more\n"
                   "ranks than cores they take turns. The latency of a request stays one replica's (or worse when\n"
                   "replicas share a core): data parallelism adds capacity, not speed; to make ONE request faster\n"
                   "the model itself must be split (tensor parallelism, chapter 03).");
}

}  // namespace fivefold::ch02
