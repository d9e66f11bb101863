// SPDX-License-Identifier: MIT
// Step 6: long-context inference: the prompt prefilled by the ring, decoding over a sharded cache.
#include <sstream>

#include "chapters/05_sequence_parallel/sp_generate.hpp"
#include "chapters/05_sequence_parallel/steps.hpp"
#include "common/check.hpp"
#include "nn/model.hpp"

namespace fivefold::ch05 {

void step6_inference(Context& ctx, Lab& lab) {
  const ModelConfig& c = lab.o.cfg;
  const int n = ctx.size(), P = lab.o.prompt, G = lab.o.gen_tokens;
  ModelConfig pc = c;
  pc.seq = P;
  const SpMode mode = check_layout(SpMode::zigzag, pc, n).empty() ? SpMode::zigzag : SpMode::ring;
  ctx.narrator.say("Greedy generation from a prompt of " + std::to_string(P) + " tokens: the prompt is prefilled with " +
                   sp_mode_name(mode) + " attention, each rank keeping the k/v of its own positions; then every "
                   "rank runs each new token through the model, its query meets every rank's shard (partial "
                   "out and lse per rank), an all-gather brings the partials and the log-sum-exp merge gives the "
                   "attention over the whole context. Token P + i's k/v stay on rank i % sp (round robin).");
  Communicator& g = group(ctx, lab, mode);
  const nn::Batch batch = nn::synthetic_batch(c.seed, c.vocab, c.batch, P, 0);
  CpGenStats st;
  const Tensor ours = cp_generate(ctx.ops, g, c, mode, batch.inputs, G, &st);
  nn::Model ref(ctx.ops, c);
  const Tensor want = ref.generate(batch.inputs, G, true);
  ctx.check(compare("greedy tokens == chapter 01's (" + sp_mode_name(mode) + " prefill, sharded cache)", ours, want, 0.0));

  const std::vector<std::string> lines = ctx.gather(std::to_string(st.kv_slots.front()) + " " +
                                                    std::to_string(st.kv_slots.back()));
  Table t{"KV cache held per rank (k and v of every layer)", {"rank", "positions after prefill", "bytes", "positions at the end", "bytes", "whole cache / sp"}, {}};
  const std::int64_t whole = (P + G - 1) * st.kv_bytes_per_slot;
  for (int r = 0; r < n; ++r) {
    std::istringstream in(lines[r]);
    std::int64_t a = 0, b = 0;
    in >> a >> b;
    t.add({std::to_string(r), std::to_string(a), std::to_string(a * st.kv_bytes_per_slot), std::to_string(b),
           std::to_string(b * st.kv_bytes_per_slot), std::to_string(whole / n)});
  }
  ctx.show(t);
  pc.batch = c.batch;
  const std::int64_t prefill = c.layers * RingAttention::forward_bytes(pc, n, c.batch, P);
  const std::int64_t decode = (G - 1) * decode_bytes_per_token(c, c.batch);
  ctx.comm({g.name() + ":prefill", "isend", st.prefill.calls, st.prefill.payload_bytes,
            n > 1 ? c.layers * 2 * (n - 1) : 0, prefill});
  ctx.comm({g.name() + ":decode", "all_gather", st.decode.calls, st.decode.payload_bytes, (G - 1) * 2 * c.layers, decode});
  ctx.narrator.say("Per generated token this rank hands L x (B H hd + B H) x 4 = " +
                   std::to_string(decode_bytes_per_token(c, c.batch)) + " bytes to the merges' all-gathers, "
                   "whatever the context length; the cache it holds grows by one position every " +
                   std::to_string(n) + " tokens.");
}

}  // namespace fivefold::ch05
