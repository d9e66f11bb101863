// SPDX-License-Identifier: MIT
/// @file model_config.hpp
/// @brief ModelConfig: every size and hyper-parameter of the reference model (docs/reference.md),
/// its command-line options ("Command line"), validation and the config.json keys ("The dump").
///
/// Defaults are a model that trains in about a second on a laptop core. MoE layers: when
/// --experts > 0, layer l is a MoE layer iff l % moe_every == moe_every - 1 (moe_every 1 = every
/// layer, 2 = layers 1, 3, 5, ...); the others keep the dense SwiGLU MLP.
#pragma once

#include <cstdint>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace fivefold {

/// Sizes and hyper-parameters of the reference model and its training run.
struct ModelConfig {
  int vocab = 64;     ///< V, --vocab
  int seq = 32;       ///< T, --seq
  int dim = 64;       ///< C, --dim
  int heads = 4;      ///< H, --heads
  int kv_heads = 2;   ///< Hkv, --kv-heads (GQA when < heads)
  int ffn = 128;      ///< F, --ffn (SwiGLU hidden size, dense MLP and each expert)
  int layers = 2;     ///< L, --layers
  int batch = 8;      ///< B, --batch (global batch)
  int steps = 40;     ///< --steps (optimizer steps)
  double lr = 1e-3;   ///< --lr (AdamW learning rate; torch's default)
  std::uint64_t seed = 1234;  ///< --seed (weights and data)

  int experts = 0;               ///< E, --experts (0 = dense model)
  int topk = 2;                  ///< k, --topk
  double capacity_factor = 0.0;  ///< --capacity-factor (0 = dropless)
  double aux_coef = 0.01;        ///< --aux-coef (Switch load-balancing loss weight)
  int moe_every = 1;             ///< --moe-every: which layers are MoE (see the file comment)

  double beta1 = 0.9;         ///< --beta1 (AdamW)
  double beta2 = 0.999;       ///< --beta2 (AdamW)
  double eps = 1e-8;          ///< --eps (AdamW)
  double weight_decay = 0.0;  ///< --weight-decay (AdamW, decoupled, applied to every parameter)
  double rope_theta = 10000.0;  ///< RoPE base (fixed by the reference model)
  double norm_eps = 1e-5;       ///< RMSNorm epsilon (fixed by the reference model)

  /// hd = dim / heads.
  int head_dim() const { return dim / heads; }
  /// True when layer @p l has a MoE MLP.
  bool is_moe_layer(int l) const { return experts > 0 && l % moe_every == moe_every - 1; }
  /// Indices of the MoE layers (empty for a dense model).
  std::vector<int> moe_layers() const;
  /// Throws UsageError (one line naming the value and the fix) for an impossible config:
  /// non-positive sizes, heads not dividing dim, odd head dim, kv-heads not dividing heads,
  /// vocab < 2, topk outside [1, experts] when experts > 0, negative capacity factor / aux coef.
  void validate() const;
  /// The config.json object of the dump (docs/reference.md, "The dump"; model and optimizer keys,
  /// plus moe_layers and
  /// moe_every); chapters add their parallel degrees to it.
  nlohmann::json to_json() const;
};

/// Adds the model/run options (--vocab --seq --dim --heads --kv-heads --ffn --layers --batch
/// --steps --lr --seed, the AdamW options, and, when @p with_moe, --experts --topk
/// --capacity-factor --aux-coef --moe-every) bound to @p cfg, defaults shown in --help.
void add_model_options(CLI::App& app, ModelConfig& cfg, bool with_moe = true);

}  // namespace fivefold
