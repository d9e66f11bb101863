// SPDX-License-Identifier: MIT
// Step 6: MoE inference: each new token's hidden state goes to its top-k experts and back.
#include "chapters/06_expert_parallel/steps.hpp"
#include "common/check.hpp"
#include "nn/model.hpp"

namespace fivefold::ch06 {

void step6_inference(Context& ctx, Lab& lab) {
  const ModelConfig& c = lab.o.cfg;
  const int P = lab.o.prompt, G = lab.o.gen_tokens;
  Groups& g = groups(ctx, lab, lab.o.ep, lab.o.dp);
  std::int64_t moe = 0;
  for (int l = 0; l < c.layers; ++l) moe += c.is_moe_layer(l) ? 1 : 0;
  ctx.narrator.say("Greedy generation: every rank generates for its own " + std::to_string(c.batch / ctx.size()) +
                   " prompt(s) of " + std::to_string(P) + " tokens; in each MoE layer each new token's hidden state "
                   "goes by all-to-all to the ranks of its top-" + std::to_string(c.topk) + " experts and comes "
                   "back (dropless: a per-sequence capacity would depend on the length generated so far).");
  EpModel model(ctx.ops, g.ep(), g.dp(), g.data(), c);
  const nn::Batch prompts = nn::synthetic_batch(c.seed, c.vocab, c.batch, P, 0);
  const nn::Batch mine = model.mine(prompts);
  std::vector<std::int64_t> per_token;  // payload bytes this rank handed to the ep group, per generated token
  std::int64_t last = 0;
  g.ep().reset_counts();
  model.set_observer([&](const std::string& label) {
    if (label.rfind("token ", 0) != 0) return;
    std::int64_t now = 0;
    for (const auto& [op, cnt] : g.ep().counts()) now += cnt.payload_bytes;
    per_token.push_back(now - last);
    last = now;
  });
  const Tensor ours = model.generate(mine.inputs, G, true);
  model.set_observer({});
  nn::Model ref(ctx.ops, c);
  const Tensor want = ref.generate(prompts.inputs, G, true);
  const std::int64_t b = mine.inputs.dim(0);
  ctx.check(compare("greedy tokens of my prompts == chapter 01's", ours,
                    want.narrow(g.data().rank() * b, b).clone(), 0.0));
  // Summed over every rank: per MoE layer, the counts (E int32 per rank) and every assignment
  // dispatched and returned: 2 B k rows of C floats for a one-token step.
  Table t{"Bytes per generated token, summed over the ranks (counted vs formula)", {"token", "counted", "formula"}, {}};
  CheckResult bytes{"bytes per generated token, all ranks == L_moe (ranks E 4 + 2 B k C 4)", 0, 0, 0, true};
  for (std::size_t k = 1; k < per_token.size(); ++k) {
    Tensor v = ctx.ops.upload(Tensor::from_vector(std::vector<float>{static_cast<float>(per_token[k])}, {1}));
    {
      Uncounted quiet(ctx.world);
      ctx.world.all_reduce(v);
    }
    const double got = v.to(Device::host).at<float>(0);
    const double formula = static_cast<double>(moe) * (ctx.size() * c.experts * 4.0 + 2.0 * c.batch * c.topk * c.dim * 4.0);
    merge(bytes, compare_exact(bytes.name, got, formula));
    t.add({std::to_string(k), std::to_string(static_cast<std::int64_t>(got)), std::to_string(static_cast<std::int64_t>(formula))});
  }
  ctx.show(t);
  ctx.check(bytes);
}

}  // namespace fivefold::ch06
