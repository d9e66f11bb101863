// SPDX-License-Identifier: MIT
// Step 7: greedy generation through the pipeline: one request's latency, requests in flight.
#include "chapters/04_pipeline_parallel/pp_generate.hpp"
#include "chapters/04_pipeline_parallel/steps.hpp"
#include "nn/model.hpp"

namespace fivefold::ch04 {

namespace {

/// The prompts of @p n requests of one sequence each: the first --prompt tokens of sequences of
/// the stream (from sequence 1000 on, not trained on).
Tensor prompts_of(const Options& o, int n) {
  const Tensor t = nn::synthetic_batch(o.cfg.seed, o.cfg.vocab, n, o.cfg.seq, 1000).inputs;  // [n, T]
  std::vector<std::int32_t> v;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < o.prompt; ++j) v.push_back(t.at<std::int32_t>(i * t.dim(1) + j));
  return Tensor::from_vector(v, {n, o.prompt});
}

}  // namespace

void step7_inference(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  Communicator& pp = pp_group(ctx, lab);
  const int p = pp.size(), r = ctx.rank(), R = lab.o.requests, P = lab.o.prompt, N = lab.o.gen_tokens;
  ctx.narrator.say("Generation through the stages: stage s keeps the KV cache of its own layers for every request. A "
                   "token goes stage 0 -> ... -> stage " + std::to_string(p - 1) + ", which picks the next token "
                   "(greedy) and sends its id back to stage 0: p-1 hops of [b, n, C] forward, one of b int32 ids back. "
                   "One request alone keeps one stage busy at a time; several requests in flight fill the pipe.");
  PipelineStage stage(ctx.ops, cfg, p, 1, r);  // the initial weights: the serial model's, bit for bit
  StageLink link(pp, ctx.ops);
  const Tensor prompts = prompts_of(lab.o, R);  // [R, P], one sequence per request
  Table t{"Greedy generation of " + std::to_string(N) + " tokens per request (rank 0's clock)",
          {"requests in flight", "time (ms)", "prefill (ms)", "ms per token step", "tokens/s", "vs 1 request"},
          {}};
  double one = 0.0;
  Tensor tokens;
  {
    GenerationTimes warm;  // a first, untimed generation: first-touch allocations, MPI connections
    pipelined_generate(stage, link, prompts_of(lab.o, 1), 1, std::min(N, 2), &warm);
  }
  std::vector<int> in_flight;
  for (int q = 1; q < R; q *= 2) in_flight.push_back(q);
  in_flight.push_back(R);  // 1, 2, 4, ... and --requests itself
  for (int q : in_flight) {
    pp.reset_counts();
    link.reset();
    GenerationTimes times;
    const Tensor mine = prompts_of(lab.o, q);
    tokens = pipelined_generate(stage, link, mine, q, N, &times);
    const double rate = q * N / times.seconds;
    if (q == 1) one = rate;
    t.add({std::to_string(q), fmt("%.2f", 1e3 * times.seconds), fmt("%.2f", 1e3 * times.prefill_seconds),
           fmt("%.3f", 1e3 * (times.seconds - times.prefill_seconds) / std::max(N - 1, 1)), fmt("%.0f", rate),
           fmt("%.2fx", rate / one)});
    // Traffic of this generation: what this rank sent, against the layout.
    std::int64_t want_calls = 0, want_bytes = 0;
    if (p > 1 && r < p - 1) {
      want_calls = static_cast<std::int64_t>(q) * N;  // one hidden state per request and token step
      want_bytes = 4LL * q * cfg.dim * (P + (N - 1));  // the prefill's P positions, then one per step
    } else if (p > 1) {
      want_calls = static_cast<std::int64_t>(q) * N;  // the token ids back to stage 0
      want_bytes = 4LL * q * N;
    }
    ctx.comm(Context::entry("pp:generate:" + std::to_string(q), "isend", pp.counts(), want_calls, want_bytes));
    if (q == R) {
      Tensor got = r == 0 ? ctx.ops.upload(tokens) : Tensor::empty({R, P + N}, DType::i32, ctx.ops.device());
      {
        Uncounted quiet(pp);
        pp.broadcast(got, 0);  // rank 0 collected the tokens; every rank checks them
      }
      nn::Model serial(ctx.ops, cfg);
      ctx.check(compare("greedy tokens (" + std::to_string(R) + " requests in flight) == serial generation", got,
                        serial.generate(prompts, N, true), 0.0));
    }
  }
  ctx.show(t);
  if (r == 0 && !ctx.options.quiet) {
    std::string row;
    for (std::int64_t j = 0; j < tokens.dim(1); ++j) row += std::to_string(tokens.at<std::int32_t>(j)) + " ";
    ctx.narrator.say("Request 0: prompt + generated tokens: " + row);
  }
  ctx.narrator.say("With one request a token step takes the sum of the stage times plus p hops; with requests in "
                   "flight the stages work on different requests at once and the hops of one overlap the compute of "
                   "another, so tokens/s grows with the requests until the busiest stage never waits (about p times "
                   "one request's when compute dominates; more when, as here, hops and waiting for a shared core "
                   "dominate). Each request still waits a whole trip per token: pipelining buys throughput, not "
                   "latency.");
}

}  // namespace fivefold::ch04
