// SPDX-License-Identifier: MIT
/// @file ref_model.hpp
/// @brief The whole reference model (docs/reference.md) in double precision on top of reference.hpp
/// (tests only).
#pragma once

#include <map>
#include <string>

#include "common/model_config.hpp"
#include "nn/params.hpp"
#include "tests/nn/reference.hpp"

namespace fivefold::ref {

/// Double-precision reference model; parameters by HF Llama name (docs/reference.md).
struct RefModel {
  ModelConfig cfg;                 ///< sizes
  std::map<std::string, Vec> p;    ///< parameters (double copies)

  /// Copies every parameter of @p reg.
  RefModel(const ModelConfig& c, nn::ParamRegistry& reg) : cfg(c) {
    for (nn::Param& q : reg.all()) p[q.name] = to_double(q.value);
  }

  /// Result of a forward.
  struct Out {
    double loss = 0.0, ce = 0.0, aux = 0.0;  ///< total, cross-entropy, sum of aux losses
    Vec logits;                               ///< [B, T, V]
    IVec routing;                             ///< every MoE choice and kept flag, concatenated
  };

  /// Forward of tokens/targets [B*T].
  Out forward(const IVec& tokens, const IVec& targets) const {
    const std::int64_t B = cfg.batch, T = cfg.seq, C = cfg.dim, V = cfg.vocab, H = cfg.heads, Hkv = cfg.kv_heads;
    const std::int64_t hd = cfg.head_dim(), F = cfg.ffn, N = B * T;
    Out o;
    Vec x(N * C);
    const Vec& emb = p.at("embed_tokens.weight");
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t c = 0; c < C; ++c) x[n * C + c] = emb[tokens[n] * C + c];
    IVec pos(T);
    std::iota(pos.begin(), pos.end(), 0);
    for (int l = 0; l < cfg.layers; ++l) {
      const std::string pre = "layers." + std::to_string(l) + ".";
      const Vec a = rmsnorm(x, C, p.at(pre + "input_layernorm.weight"), cfg.norm_eps);
      Vec q = linear(a, N, C, p.at(pre + "self_attn.q_proj.weight"), H * hd);
      Vec k = linear(a, N, C, p.at(pre + "self_attn.k_proj.weight"), Hkv * hd);
      const Vec v = linear(a, N, C, p.at(pre + "self_attn.v_proj.weight"), Hkv * hd);
      rope(q, B, T, H, hd, pos, cfg.rope_theta);
      rope(k, B, T, Hkv, hd, pos, cfg.rope_theta);
      const Vec att = attention(q, k, v, B, T, T, H, Hkv, hd, pos, pos);
      const Vec proj = linear(att, N, H * hd, p.at(pre + "self_attn.o_proj.weight"), C);
      for (std::int64_t i = 0; i < N * C; ++i) x[i] += proj[i];
      const Vec m = rmsnorm(x, C, p.at(pre + "post_attention_layernorm.weight"), cfg.norm_eps);
      Vec f;
      if (cfg.is_moe_layer(l)) {
        std::vector<std::array<Vec, 3>> ex;
        for (int e = 0; e < cfg.experts; ++e) {
          const std::string ep = pre + "moe.experts." + std::to_string(e) + ".";
          ex.push_back({p.at(ep + "gate_proj.weight"), p.at(ep + "up_proj.weight"), p.at(ep + "down_proj.weight")});
        }
        MoeOut mo = moe(m, B, T, C, F, cfg.experts, cfg.topk, cfg.capacity_factor, cfg.aux_coef,
                        p.at(pre + "moe.router.weight"), ex);
        f = std::move(mo.y);
        o.aux += mo.aux;
        o.routing.insert(o.routing.end(), mo.choice.begin(), mo.choice.end());
        o.routing.insert(o.routing.end(), mo.kept.begin(), mo.kept.end());
      } else {
        f = swiglu_mlp(m, N, C, F, p.at(pre + "mlp.gate_proj.weight"), p.at(pre + "mlp.up_proj.weight"),
                       p.at(pre + "mlp.down_proj.weight"));
      }
      for (std::int64_t i = 0; i < N * C; ++i) x[i] += f[i];
    }
    const Vec h = rmsnorm(x, C, p.at("norm.weight"), cfg.norm_eps);
    o.logits = linear(h, N, C, p.at("lm_head.weight"), V);
    o.ce = cross_entropy(o.logits, N, V, targets);
    o.loss = o.ce + o.aux;
    return o;
  }
};

}  // namespace fivefold::ref
