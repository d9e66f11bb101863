// SPDX-License-Identifier: MIT
// Step 5: inference. Greedy generation from the trained model, with a KV cache (prefill the
// prompt, then one token per step) and without (a full forward of the whole sequence for every
// new token). Same tokens, token for token; the cache trades memory (2 L B S Hkv hd floats)
// for work (each new token is one position of compute instead of the whole prefix).
// Run: build/cpu/bin/ch01_reference_model --step 5 --prompt 4 --gen-tokens 12
#include <algorithm>

#include "chapters/01_reference_model/generation.hpp"
#include "chapters/01_reference_model/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch01 {

namespace {

/// Columns [0, p) of int32 [B, T] (host).
Tensor first_columns(const Tensor& t, std::int64_t p) {
  const std::int64_t B = t.dim(0), T = t.dim(1);
  const std::vector<std::int32_t> v = t.to_ivector();
  std::vector<std::int32_t> out(static_cast<std::size_t>(B * p));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < p; ++i) out[b * p + i] = v[b * T + i];
  return Tensor::from_vector(out, {B, p});
}

}  // namespace

void step5_generation(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  Ops& ops = ctx.ops;
  if (!lab.trained) {
    ctx.narrator.say("Step 4 did not run in this invocation: training the model first (" + std::to_string(cfg.steps) +
                     " steps, not narrated).");
    train(ctx, lab, false);
  }
  nn::Model& model = *lab.trained;
  const std::int64_t B = cfg.batch, P = lab.o.prompt, n = lab.o.gen_tokens, S = P + n;
  // Prompts from far along the stream: sequences the model never trained on.
  const nn::Batch held = nn::synthetic_batch(cfg.seed, cfg.vocab, cfg.batch, cfg.seq, 1000000);
  const Tensor prompt = first_columns(held.inputs, P);  // [B, P]

  KvGenerator gen(ops, model.params(), cfg);
  const Tensor cached = gen.generate(prompt, static_cast<int>(n));  // [B, P + n]
  TracedModel traced(ops, model.params(), cfg);
  Tensor full_logits;
  const Tensor full = generate_full(traced, prompt, static_cast<int>(n), &full_logits);

  const std::vector<std::int32_t> seq = cached.to_ivector();
  Table t{"Greedy generation (KV cache)", {"row", "prompt", "generated", "follow 3x+1 mod V"}, {}};
  for (std::int64_t b = 0; b < std::min<std::int64_t>(B, 4); ++b) {
    std::string p, g;
    int rule = 0;
    for (std::int64_t i = 0; i < S; ++i) {
      (i < P ? p : g) += (i == 0 || i == P ? "" : " ") + std::to_string(seq[b * S + i]);
      if (i >= P && seq[b * S + i] == (3 * seq[b * S + i - 1] + 1) % cfg.vocab) ++rule;
    }
    t.add({std::to_string(b), p, g, std::to_string(rule) + "/" + std::to_string(n)});
  }
  ctx.show(t);
  const std::int64_t cached_positions = S - 1, full_positions = (P + S - 1) * n / 2;
  ctx.narrator.say("Token positions pushed through the model: " + std::to_string(cached_positions) +
                   " with the cache (prompt once, then one per token) vs " + std::to_string(full_positions) +
                   " recomputing everything.\nThe caches hold " + human_bytes(static_cast<double>(gen.cache_bytes())) +
                   " = 2 (k, v) x L x B x S x Hkv x hd x 4 bytes; GQA divides it by H/Hkv = " +
                   std::to_string(cfg.heads / cfg.kv_heads) + ".");

  ctx.check(compare("KV-cache generation == full recompute (tokens, exact)", cached, full, 0.0));
  // The cached path multiplies smaller matrices (one row instead of the whole prefix), so the
  // float sums may round differently: logits agree to rounding, not bit for bit.
  ctx.check(compare("KV-cache logits == full-forward logits", gen.step_logits(), full_logits, 1e-5));
  CheckResult lib = compare("nn::Model::generate (cached, uncached) == this chapter's tokens",
                            model.generate(prompt, static_cast<int>(n), true), cached, 0.0);
  merge(lib, compare("", model.generate(prompt, static_cast<int>(n), false), cached, 0.0));
  ctx.check(lib);
  const double want = 2.0 * cfg.layers * B * S * cfg.kv_heads * cfg.head_dim() * 4.0;
  check_number(ctx, "KV cache bytes == 2*L*B*S*Hkv*hd*4", static_cast<double>(gen.cache_bytes()), want, 0.0);
  check_ranks_agree(ctx, "generated tokens", cached);
}

}  // namespace fivefold::ch01
