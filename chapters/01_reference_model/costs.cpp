// SPDX-License-Identifier: MIT
// Chapter 01's formulas (see costs.hpp and the README's "Counting" and "Memory" sections).
// Every term names the tensor it counts, so a reader can match it with a line of nn/.
#include "chapters/01_reference_model/costs.hpp"

#include "common/check.hpp"

namespace fivefold::ch01 {

ModelConfig config_124m() {
  ModelConfig c;
  c.vocab = 32000;
  c.dim = 768;
  c.ffn = 2048;
  c.layers = 12;
  c.heads = 12;
  c.kv_heads = 4;
  c.seq = 1024;
  c.batch = 8;
  return c;
}

std::vector<ParamGroup> param_groups(const ModelConfig& cfg) {
  const std::int64_t V = cfg.vocab, C = cfg.dim, F = cfg.ffn, L = cfg.layers, E = cfg.experts;
  const std::int64_t kvd = static_cast<std::int64_t>(cfg.kv_heads) * cfg.head_dim();  // Hkv*hd
  const std::int64_t moe = static_cast<std::int64_t>(cfg.moe_layers().size()), dense = L - moe;
  std::vector<ParamGroup> g;
  g.push_back({"embedding", "V*C", V * C, "embed_tokens."});
  g.push_back({"attention q, k, v, o", "L*(2*C^2 + 2*C*Hkv*hd)", L * (2 * C * C + 2 * C * kvd), ".self_attn."});
  g.push_back({"RMSNorm gains (2 per layer)", "2*L*C", 2 * L * C, "layernorm."});
  if (dense > 0) g.push_back({"dense MLP gate, up, down", "L_dense*3*C*F", dense * 3 * C * F, ".mlp."});
  if (moe > 0) {
    g.push_back({"MoE experts", "L_moe*E*3*C*F", moe * E * 3 * C * F, ".experts."});
    g.push_back({"MoE routers", "L_moe*E*C", moe * E * C, ".router."});
  }
  g.push_back({"final norm", "C", C, "=norm.weight"});
  g.push_back({"lm_head (untied)", "V*C", V * C, "lm_head."});
  return g;
}

std::int64_t param_count(const ModelConfig& cfg) {
  std::int64_t n = 0;
  for (const ParamGroup& g : param_groups(cfg)) n += g.count;
  return n;
}

std::int64_t matmul_params_per_token(const ModelConfig& cfg) {
  const std::int64_t V = cfg.vocab, C = cfg.dim, F = cfg.ffn, L = cfg.layers, E = cfg.experts, k = cfg.topk;
  const std::int64_t kvd = static_cast<std::int64_t>(cfg.kv_heads) * cfg.head_dim();
  std::int64_t n = V * C;  // lm_head; the embedding is a lookup (no multiply)
  for (int l = 0; l < L; ++l) {
    n += 2 * C * C + 2 * C * kvd;  // q, o (C x C) and k, v (C x Hkv*hd)
    n += cfg.is_moe_layer(l) ? E * C + k * 3 * C * F : 3 * C * F;  // router + k experts, or the MLP
  }
  return n;
}

double attention_flops_per_token(const ModelConfig& cfg, std::int64_t seq) {
  // Forward per token and layer: scores q.k over T keys (2*T*C) and the weighted sum of v
  // (2*T*C); the backward does twice that (dq, dk from dS; dv, dP from dout). 3 * 4 = 12.
  return 12.0 * cfg.layers * static_cast<double>(seq) * cfg.dim;
}

double train_flops_per_token(const ModelConfig& cfg, std::int64_t seq) {
  // 2 FLOPs (multiply + add) per weight in the forward, 4 in the backward (dx and dW).
  return 6.0 * static_cast<double>(matmul_params_per_token(cfg)) + attention_flops_per_token(cfg, seq);
}

StateBytes state_bytes(const ModelConfig& cfg) {
  const std::int64_t n = param_count(cfg);
  return {4 * n, 4 * n, 8 * n};
}

double training_bytes(const ModelConfig& cfg) {
  const StateBytes s = state_bytes(cfg);
  const ActivationBytes a = activation_bytes(cfg);
  return static_cast<double>(s.params) + static_cast<double>(s.grads) + static_cast<double>(s.adam) +
         static_cast<double>(a.forward) + static_cast<double>(a.backward);
}

ActivationBytes activation_bytes(const ModelConfig& cfg, const std::vector<std::int64_t>& assignments) {
  const std::int64_t B = cfg.batch, T = cfg.seq, N = B * T, C = cfg.dim, F = cfg.ffn, V = cfg.vocab;
  const std::int64_t H = cfg.heads, E = cfg.experts, kvd = static_cast<std::int64_t>(cfg.kv_heads) * cfg.head_dim();
  const std::vector<int> moe_layers = cfg.moe_layers();
  FIVEFOLD_CHECK(assignments.empty() || assignments.size() == moe_layers.size(), "activation_bytes: ",
                 assignments.size(), " assignment counts for ", moe_layers.size(), " MoE layers");
  ActivationBytes a;  // counted in elements (fp32 or int32), times 4 at the end
  // Top of the model. Saved: the last layer's output and the final norm's output (inputs of the
  // norm and of lm_head), its 1/rms, the logits (the cross-entropy's softmax), tokens, targets.
  a.saved = N * (2 * C + 1 + V + 2);
  // This implementation: tokens, targets, positions [T], the embedding output [N, C], final
  // norm y and 1/rms, logits, per-token losses [N] and a separate dlogits [N, V].
  a.forward = N + N + T + N * C + N * C + N + N * V + N + N * V;
  // Backward: dh of lm_head and dx of the final norm.
  a.backward = 2 * N * C;
  std::size_t m = 0;
  for (int l = 0; l < cfg.layers; ++l) {
    // Attention half, saved: x, a = norm1(x), q, o, h = x + attn (5 C), k, v (2 Hkv*hd),
    // lse (H), 1/rms of both norms (2); and m = norm2(h), the MLP's input (C).
    a.saved += N * (6 * C + 2 * kvd + H + 2);
    // Implemented: norm1 y, q, o, o_proj output, h, norm2 y, the layer's output (7 C) (the
    // layer's input x is the previous layer's output), k, v, lse, two 1/rms.
    a.forward += N * (7 * C + 2 * kvd + H + 2);
    // Backward: the norms' dx (2), dh, d_o, dq, da, the layer's dx (7 C), dk, dv.
    a.backward += N * (7 * C + 2 * kvd);
    if (!cfg.is_moe_layer(l)) {
      a.saved += N * 3 * F;              // g, u, h = silu(g)*u
      a.forward += N * (3 * F + C);      // ... and the MLP's output
      a.backward += N * (3 * F + C);     // dh, dg, du, dx
    } else {
      const std::int64_t A = assignments.empty() ? N * cfg.topk : assignments[m];
      ++m;
      // Saved: router probabilities; per assignment g, u, h, the expert output (the gate's
      // gradient is dy . expert(x)), the token index and its gate.
      a.saved += N * E + A * (3 * F + C + 2);
      // Implemented: output y, router logits and probs; per assignment the gathered input, the
      // expert's output and its copy, g, u, h, index, gate.
      a.forward += N * C + 2 * N * E + A * (3 * C + 3 * F + 2);
      // Backward: dx, router dlogits; per assignment d(expert out), d(expert in), dgate, and the
      // expert's dh, dg, du, dx.
      a.backward += N * C + N * E + A * (3 * C + 3 * F + 1);
    }
  }
  a.saved *= 4;
  a.forward *= 4;
  a.backward *= 4;
  return a;
}

}  // namespace fivefold::ch01
