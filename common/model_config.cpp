// SPDX-License-Identifier: MIT
// ModelConfig: command-line options, validation with one-line fixes, config.json keys.
#include "common/model_config.hpp"

#include <algorithm>
#include <cmath>

#include "common/check.hpp"
#include "common/cli.hpp"

namespace fivefold {

std::vector<int> ModelConfig::moe_layers() const {
  std::vector<int> out;
  for (int l = 0; l < layers; ++l)
    if (is_moe_layer(l)) out.push_back(l);
  return out;
}

void ModelConfig::validate() const {
  const std::pair<const char*, int> sizes[] = {{"--vocab", vocab}, {"--seq", seq},       {"--dim", dim},
                                               {"--heads", heads}, {"--kv-heads", kv_heads}, {"--ffn", ffn},
                                               {"--layers", layers}, {"--batch", batch},   {"--moe-every", moe_every}};
  for (const auto& [name, value] : sizes)
    FIVEFOLD_USAGE_CHECK(value >= 1, name, " must be >= 1 (got ", value, "); pass a positive size");
  FIVEFOLD_USAGE_CHECK(steps >= 0, "--steps must be >= 0 (got ", steps, ")");
  const std::pair<const char*, double> reals[] = {{"--lr", lr},     {"--capacity-factor", capacity_factor},
                                                  {"--aux-coef", aux_coef}, {"--beta1", beta1}, {"--beta2", beta2},
                                                  {"--eps", eps},   {"--weight-decay", weight_decay}};
  for (const auto& [name, value] : reals)
    FIVEFOLD_USAGE_CHECK(std::isfinite(value), name, " must be a finite number (got ", value, ")");
  // The largest tensors' byte counts must fit a signed 64-bit integer (they are computed in one).
  const long double B = batch, T = seq, C = dim, V = vocab, H = heads, F = ffn, E = std::max(experts, 1);
  const std::pair<const char*, long double> tensors[] = {
      {"--batch x --seq x --vocab (the logits)", B * T * V},
      {"--batch x --heads x --seq x --seq (the attention scores)", B * H * T * T},
      {"--vocab x --dim (the embedding)", V * C},
      {"--experts x --ffn x --dim (a layer's MLP)", E * F * C},
      {"--batch x --seq x --ffn (the MLP activations)", B * T * F * E},
      {"--layers x the weights of a layer", static_cast<long double>(layers) * (4 * C * C + 3 * E * F * C)}};
  for (const auto& [what, elements] : tensors)
    FIVEFOLD_USAGE_CHECK(elements * 4 < 0x1p62L, what, " = ", static_cast<double>(elements),
                         " elements overflows 64-bit byte counts; lower those sizes");
  FIVEFOLD_USAGE_CHECK(vocab >= 2, "--vocab must be >= 2 (got ", vocab, "); a language needs at least two tokens");
  FIVEFOLD_USAGE_CHECK(dim % heads == 0, "--heads ", heads, " does not divide --dim ", dim,
                       "; pick heads dividing dim (e.g. --heads ", dim % 4 == 0 ? 4 : 1, ")");
  FIVEFOLD_USAGE_CHECK(head_dim() % 2 == 0, "head dim --dim/--heads = ", dim, "/", heads, " = ", head_dim(),
                       " is odd; RoPE rotates pairs, so pick --dim and --heads with an even quotient");
  FIVEFOLD_USAGE_CHECK(heads % kv_heads == 0, "--kv-heads ", kv_heads, " does not divide --heads ", heads,
                       "; pick kv-heads dividing heads (GQA groups query heads evenly)");
  FIVEFOLD_USAGE_CHECK(experts >= 0, "--experts must be >= 0 (got ", experts, "); 0 means a dense model");
  if (experts > 0) {
    FIVEFOLD_USAGE_CHECK(topk >= 1 && topk <= experts, "--topk ", topk, " must be in [1, --experts ", experts,
                         "]; pick --topk <= --experts");
  }
  FIVEFOLD_USAGE_CHECK(capacity_factor >= 0.0, "--capacity-factor must be >= 0 (got ", capacity_factor,
                       "); 0 means dropless");
  FIVEFOLD_USAGE_CHECK(aux_coef >= 0.0, "--aux-coef must be >= 0 (got ", aux_coef, ")");
  FIVEFOLD_USAGE_CHECK(lr > 0.0, "--lr must be > 0 (got ", lr, ")");
  FIVEFOLD_USAGE_CHECK(beta1 >= 0.0 && beta1 < 1.0 && beta2 >= 0.0 && beta2 < 1.0, "--beta1 ", beta1,
                       " and --beta2 ", beta2, " must be in [0, 1)");
  FIVEFOLD_USAGE_CHECK(eps > 0.0, "--eps must be > 0 (got ", eps, ")");
  FIVEFOLD_USAGE_CHECK(weight_decay >= 0.0, "--weight-decay must be >= 0 (got ", weight_decay, ")");
}

nlohmann::json ModelConfig::to_json() const {
  return nlohmann::json{{"vocab", vocab},
                        {"seq", seq},
                        {"dim", dim},
                        {"heads", heads},
                        {"kv_heads", kv_heads},
                        {"ffn", ffn},
                        {"layers", layers},
                        {"batch", batch},
                        {"steps", steps},
                        {"lr", lr},
                        {"seed", seed},
                        {"experts", experts},
                        {"topk", topk},
                        {"capacity_factor", capacity_factor},
                        {"aux_coef", aux_coef},
                        {"moe_every", moe_every},
                        {"moe_layers", moe_layers()},
                        {"beta1", beta1},
                        {"beta2", beta2},
                        {"eps", eps},
                        {"weight_decay", weight_decay},
                        {"rope_theta", rope_theta},
                        {"norm_eps", norm_eps}};
}

void add_model_options(CLI::App& app, ModelConfig& c, bool with_moe) {
  app.add_option("--vocab", c.vocab, "V, vocabulary size")->check(kPositive);
  app.add_option("--seq", c.seq, "T, sequence length")->check(kPositive);
  app.add_option("--dim", c.dim, "C, model dimension")->check(kPositive);
  app.add_option("--heads", c.heads, "H, query heads (must divide --dim)")->check(kPositive);
  app.add_option("--kv-heads", c.kv_heads, "Hkv, key/value heads (must divide --heads; < heads is GQA)")
      ->check(kPositive);
  app.add_option("--ffn", c.ffn, "F, SwiGLU hidden size")->check(kPositive);
  app.add_option("--layers", c.layers, "L, decoder layers")->check(kPositive);
  app.add_option("--batch", c.batch, "B, global batch (sequences per step)")->check(kPositive);
  app.add_option("--steps", c.steps, "optimizer steps")->check(kNonNegative);
  app.add_option("--lr", c.lr, "AdamW learning rate");
  app.add_option("--seed", c.seed, "seed of the weights and the synthetic data");
  app.add_option("--beta1", c.beta1, "AdamW beta1");
  app.add_option("--beta2", c.beta2, "AdamW beta2");
  app.add_option("--eps", c.eps, "AdamW epsilon");
  app.add_option("--weight-decay", c.weight_decay, "AdamW decoupled weight decay");
  if (!with_moe) return;
  app.add_option("--experts", c.experts, "E, experts per MoE layer (0 = dense model)")->check(kNonNegative);
  app.add_option("--topk", c.topk, "k, experts per token")->check(kPositive);
  app.add_option("--capacity-factor", c.capacity_factor,
                 "expert capacity per sequence = ceil(cf*k*T/E); 0 = dropless");
  app.add_option("--aux-coef", c.aux_coef, "weight of the Switch load-balancing loss");
  app.add_option("--moe-every", c.moe_every, "layer l is MoE iff l % N == N-1 (1 = every layer)")->check(kPositive);
}

}  // namespace fivefold
