// SPDX-License-Identifier: MIT
// Step 2: the forward. First layer 0 op by op, straight on the Ops interface, every shape
// shown, and compared with the library's DecoderLayer; then the whole model block by block
// (TracedModel), compared with nn::Model. Both comparisons are exact: the same operations in
// the same order on the same backend give the same bits.
// Run: build/cpu/bin/ch01_reference_model --step 2   (--experts 4: layer 0 becomes a MoE layer)
#include <algorithm>
#include <cmath>

#include "chapters/01_reference_model/steps.hpp"
#include "chapters/01_reference_model/traced_model.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch01 {

namespace {

std::string first_row(const Tensor& t, std::int64_t n) {
  const std::vector<std::int32_t> v = t.to_ivector();
  std::string s;
  for (std::int64_t i = 0; i < std::min<std::int64_t>(n, t.dim(1)); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s + (t.dim(1) > n ? " ..." : "");
}

std::string moe_summary(const nn::Routing& r) {
  std::string s = "tokens per expert:";
  for (const auto& e : r.expert_tokens) s += " " + std::to_string(e.size());
  return s + ", dropped " + std::to_string(r.dropped) + ", aux loss " + fmt("%.4g", r.aux_loss);
}

}  // namespace

void step2_forward(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  Ops& ops = ctx.ops;
  const std::int64_t B = cfg.batch, T = cfg.seq, N = B * T, C = cfg.dim, H = cfg.heads, Hkv = cfg.kv_heads;
  const std::int64_t hd = cfg.head_dim(), F = cfg.ffn;
  const float eps = static_cast<float>(cfg.norm_eps), theta = static_cast<float>(cfg.rope_theta);
  nn::Model model(ops, cfg);
  nn::ParamRegistry& reg = model.params();
  auto W = [&](const std::string& name) -> const Tensor& { return reg.get("layers.0." + name + ".weight").value; };

  const nn::Batch batch = batch_of_step(lab.o, 0);
  ctx.narrator.say("The synthetic task: x_t = (3 x_{t-1} + 1) mod V, except 10% random tokens. Sequence 0:\n"
                   "  inputs  " + first_row(batch.inputs, 16) + "\n  targets " + first_row(batch.targets, 16) +
                   "\nThe model must learn the rule; the best possible loss is the noise's entropy, " +
                   fmt("%.3f", nn::synthetic_entropy(cfg.vocab)) + " nats (ln V = " +
                   fmt("%.3f", std::log(static_cast<double>(cfg.vocab))) + " for a uniform guess).");

  // ---- Layer 0, op by op (every call below is one Ops method; the shapes are the real ones).
  Table t{"Layer 0, op by op (B " + std::to_string(B) + ", T " + std::to_string(T) + ")", {"op", "shape"}, {}};
  const Tensor tokens = ops.upload(batch.inputs), pos = nn::positions(ops, 0, T);
  nn::Embedding embed(ops, reg.get("embed_tokens.weight"));
  const Tensor x = embed.forward(tokens).clone();                                    // [B, T, C]
  t.add({"x = embed_tokens.weight[tokens]", shape_str(x.shape())});
  nn::RmsNorm norm1(ops, reg.get("layers.0.input_layernorm.weight"), eps);
  const Tensor& a = norm1.forward(x);                                                // [B, T, C]
  t.add({"a = rmsnorm(x) * input_layernorm", shape_str(a.shape())});
  Tensor q = ops.empty({B, T, H, hd}), k = ops.empty({B, T, Hkv, hd}), v = ops.empty({B, T, Hkv, hd});
  Tensor q2 = q.view({N, H * hd}), k2 = k.view({N, Hkv * hd}), v2 = v.view({N, Hkv * hd});
  nn::linear_forward(ops, q2, a, W("self_attn.q_proj"));  // TUTORIAL: one matmul, then viewed as H heads
  nn::linear_forward(ops, k2, a, W("self_attn.k_proj"));  // GQA: only Hkv heads of keys and values
  nn::linear_forward(ops, v2, a, W("self_attn.v_proj"));
  t.add({"q = a q_proj^T, split into H heads", shape_str(q.shape())});
  t.add({"k, v = a k_proj^T, a v_proj^T (Hkv heads)", shape_str(k.shape())});
  ops.rope(q, pos, theta, false);
  ops.rope(k, pos, theta, false);
  t.add({"q, k = rope(q, pos), rope(k, pos)", "(in place)"});
  Tensor o = ops.empty(q.shape()), lse = ops.empty({B, H, T});
  ops.attention_forward(o, lse, q, k, v, pos, pos);
  t.add({"scores = q k^T / sqrt(hd), causal (per head, not kept)", shape_str({B, H, T, T})});
  t.add({"o = softmax(scores) v; head h reads kv head h/(H/Hkv)", shape_str(o.shape())});
  t.add({"lse = logsumexp(scores) (kept for the backward)", shape_str(lse.shape())});
  Tensor y = ops.empty({B, T, C});
  Tensor y2 = y.view({N, C});
  nn::linear_forward(ops, y2, o.view({N, H * hd}), W("self_attn.o_proj"));         // concat heads, project
  Tensor h = ops.empty({B, T, C});
  ops.add(h, x, y);                                                                  // residual
  t.add({"h = x + concat_heads(o) o_proj^T", shape_str(h.shape())});
  nn::RmsNorm norm2(ops, reg.get("layers.0.post_attention_layernorm.weight"), eps);
  const Tensor& m = norm2.forward(h);
  t.add({"m = rmsnorm(h) * post_attention_layernorm", shape_str(m.shape())});
  Tensor f;
  std::unique_ptr<nn::MoeLayer> moe;
  if (!cfg.is_moe_layer(0)) {
    Tensor g = ops.empty({B, T, F}), u = ops.empty({B, T, F}), s = ops.empty({B, T, F});
    Tensor g2 = g.view({N, F}), u2 = u.view({N, F});
    nn::linear_forward(ops, g2, m, W("mlp.gate_proj"));
    nn::linear_forward(ops, u2, m, W("mlp.up_proj"));
    ops.swiglu_forward(s, g, u);  // TUTORIAL: s = silu(g) * u, the gated MLP
    f = ops.empty({B, T, C});
    Tensor f2 = f.view({N, C});
    nn::linear_forward(ops, f2, s.view({N, F}), W("mlp.down_proj"));
    t.add({"g, u = m gate_proj^T, m up_proj^T", shape_str(g.shape())});
    t.add({"f = (silu(g) * u) down_proj^T", shape_str(f.shape())});
  } else {
    moe = std::make_unique<nn::MoeLayer>(ops, reg, "layers.0.moe", cfg.experts, cfg.topk, cfg.capacity_factor,
                                         cfg.aux_coef);
    f = moe->forward(m);
    t.add({"p = softmax(m router^T): top-" + std::to_string(cfg.topk) + " experts per token", shape_str({N, cfg.experts})});
    t.add({"f = sum_picked gate_e * expert_e(m)", shape_str(f.shape())});
    ctx.narrator.say("Layer 0 is a MoE layer; " + moe_summary(moe->routing()) + ".");
  }
  Tensor x1 = ops.empty({B, T, C});
  ops.add(x1, h, f);
  t.add({"x' = h + f (the layer's output)", shape_str(x1.shape())});
  ctx.show(t);
  nn::DecoderLayer layer0(ops, reg, cfg, 0);
  ctx.check(compare("layer 0 op by op == nn::DecoderLayer (exact)", x1, layer0.forward(x, pos), 0.0));

  // ---- The whole model, block by block.
  TracedModel traced(ops, reg, cfg);
  traced.log_shapes(true);
  const Tensor& logits = traced.forward_logits(batch.inputs);
  Table blocks{"The model, block by block", {"block output", "shape", "bytes"}, {}};
  for (const ShapeRow& r : traced.shape_log())
    blocks.add({r.what, shape_str(r.shape), human_bytes(4.0 * shape_numel(r.shape))});
  ctx.show(blocks);
  ctx.narrator.say("The logits are the largest activation: B*T*V floats. Their softmax over V is the model's "
                   "guess of the next token at every position.");
  ctx.check(compare("TracedModel logits == nn::Model::forward_logits (exact)", logits,
                    model.forward_logits(batch.inputs), 0.0));
  check_ranks_agree(ctx, "step-0 logits", logits);
}

}  // namespace fivefold::ch01
