// SPDX-License-Identifier: MIT
// Step 7: greedy generation under TP. Each rank's KV cache holds only its Hkv/tp kv heads
// ([B, S, Hkv/tp, hd] per layer, 1/tp of the serial cache). Per generated token (after the
// prompt's prefill) the ranks all-reduce the embedding and the output of every attention and MLP
// block: 1 + 2L all-reduces of [B, n, C] (n = prompt length at the prefill, then 1), and pick the
// next token with one all-gather of (best logit, id) per row: 2 floats, not V/tp logits.
// The tokens must equal the serial model's greedy tokens (nn::Model::generate with a cache).
// Run: mpirun -np 2 build/cpu/bin/ch03_tensor_parallel --step 7 --prompt 4 --gen-tokens 8
#include "chapters/03_tensor_parallel/steps.hpp"

namespace fivefold::ch03 {

namespace {

/// The first @p p tokens of every sequence of step 0's batch, int32 [B, p] on the host.
Tensor prompt_of(const Options& o) {
  const nn::Batch b = batch_of_step(o, 0);
  const std::int64_t B = b.inputs.dim(0), T = b.inputs.dim(1);
  std::vector<std::int32_t> v(B * o.prompt);
  for (std::int64_t i = 0; i < B; ++i)
    for (int t = 0; t < o.prompt; ++t) v[i * o.prompt + t] = b.inputs.at<std::int32_t>(i * T + t);
  return Tensor::from_vector(v, {B, static_cast<std::int64_t>(o.prompt)});
}

}  // namespace

void step7_generation(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  Communicator& tp = tp_group(ctx, lab);
  const int n = tp.size();
  if (!lab.model) {
    ctx.narrator.say("(training both models for " + std::to_string(cfg.steps) + " steps first, quietly)");
    train(ctx, lab, /*narrate=*/false);
  }
  const Tensor prompt = prompt_of(lab.o);
  const std::int64_t B = prompt.dim(0), P = prompt.dim(1), G = lab.o.gen_tokens;
  ctx.say_ranks("KV cache per layer [" + std::to_string(B) + ", " + std::to_string(P + G) + ", " +
                std::to_string(cfg.kv_heads / n) + ", " + std::to_string(cfg.head_dim()) + "] (serial: " +
                std::to_string(cfg.kv_heads) + " kv heads)");
  // Per token: the counters' growth since the previous token vs the formula for that pass.
  Table per{"All-reduces per generated token (rank 0): prefill of P tokens, then one token per pass",
            {"token", "tokens in pass", "all_reduce calls", "bytes", "predicted calls", "predicted bytes",
             "all_gather bytes"},
            {}};
  OpCount last_ar, last_ag;
  std::int64_t k = 0;
  lab.model->set_observer([&](const std::string&) {
    const OpCount ar = tp.counts().count("all_reduce") ? tp.counts().at("all_reduce") : OpCount{};
    const OpCount ag = tp.counts().count("all_gather") ? tp.counts().at("all_gather") : OpCount{};
    const std::int64_t n_in = k == 0 ? P : 1;
    const CommCost want = generation_all_reduce_cost(cfg, B, n_in, 1);
    per.add({std::to_string(k), std::to_string(n_in), std::to_string(ar.calls - last_ar.calls),
             std::to_string(ar.payload_bytes - last_ar.payload_bytes), std::to_string(want.calls),
             std::to_string(want.bytes), std::to_string(ag.payload_bytes - last_ag.payload_bytes)});
    last_ar = ar, last_ag = ag;
    ++k;
  });
  tp.reset_counts();
  const Tensor ours = lab.model->generate(prompt, static_cast<int>(G));
  lab.model->set_observer({});
  ctx.show(per);
  const CommCost ar = generation_all_reduce_cost(cfg, B, P, G), ag = generation_all_gather_cost(B, G);
  record(ctx, tp.counts(), n, "generation", "all_reduce", ar);
  record(ctx, tp.counts(), n, "generation", "all_gather", ag);
  const Tensor ref = lab.serial->generate(prompt, static_cast<int>(G), /*use_cache=*/true);

  Table t{"Greedy tokens (row 0): prompt | generated", {"model", "tokens"}, {}};
  auto row0 = [&](const Tensor& s) {
    std::string out;
    for (std::int64_t i = 0; i < P + G; ++i) out += (i == P ? " | " : " ") + std::to_string(s.at<std::int32_t>(i));
    return out;
  };
  t.add({"tp = " + std::to_string(n), row0(ours)});
  t.add({"serial", row0(ref)});
  ctx.show(t);
  ctx.check(compare("generated tokens == serial greedy tokens (exact)", ours, ref, 0.0));
  const double per_token = 4.0 * B * cfg.dim;
  ctx.narrator.say("Per decoded token: 1 + 2L = " + std::to_string(1 + 2 * cfg.layers) + " all-reduces of [B, 1, C] = " +
                   human_bytes(per_token) + " each, plus one all-gather of 2B floats.\n"
                   "Tiny messages: decoding under TP is latency-bound (2L+1 collective start-ups per token),\n"
                   "which is why TP stays on the fast links inside one node.");
}

}  // namespace fivefold::ch03
