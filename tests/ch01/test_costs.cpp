// SPDX-License-Identifier: MIT
// Unit tests of chapter 01's formulas (chapters/01_reference_model/costs.hpp): the closed-form
// parameter count equals what the model's registry holds (dense, GQA, MoE every layer and
// every other layer), the '124M' configuration is 124.7M parameters, the FLOP formula's
// pieces, and the activation formula's dropless default.
#include <gtest/gtest.h>

#include "chapters/01_reference_model/costs.hpp"
#include "nn/params.hpp"

namespace fivefold::ch01 {
namespace {

std::int64_t registry_count(const ModelConfig& cfg) {
  std::int64_t n = 0;
  for (const nn::ParamSpec& s : nn::model_param_specs(cfg)) n += shape_numel(s.shape);
  return n;
}

TEST(Ch01Costs, ParamCountMatchesTheRegistry) {
  ModelConfig dense;
  EXPECT_EQ(param_count(dense), registry_count(dense));
  ModelConfig gqa = dense;
  gqa.heads = 8;
  gqa.kv_heads = 2;
  gqa.dim = 64;
  EXPECT_EQ(param_count(gqa), registry_count(gqa));
  ModelConfig moe = dense;
  moe.experts = 4;
  moe.topk = 2;
  moe.layers = 3;
  EXPECT_EQ(param_count(moe), registry_count(moe));
  moe.moe_every = 2;  // layer 1 only
  EXPECT_EQ(param_count(moe), registry_count(moe));
  std::int64_t groups = 0;
  for (const ParamGroup& g : param_groups(moe)) groups += g.count;
  EXPECT_EQ(groups, param_count(moe));
}

TEST(Ch01Costs, The124MModel) {
  const ModelConfig c = config_124m();
  EXPECT_EQ(param_count(c), 124668672);  // 2VC + L(2C^2 + 2C*Hkv*hd + 2C + 3CF) + C
  EXPECT_EQ(param_count(c), registry_count(c));
  // 6N per token: every weight but the embedding table and the norm gains.
  EXPECT_EQ(matmul_params_per_token(c), param_count(c) - 32000LL * 768 - 2LL * 12 * 768 - 768);
  EXPECT_DOUBLE_EQ(attention_flops_per_token(c, 1024), 12.0 * 12 * 1024 * 768);
  EXPECT_DOUBLE_EQ(train_flops_per_token(c, 1024),
                   6.0 * static_cast<double>(matmul_params_per_token(c)) + 12.0 * 12 * 1024 * 768);
}

TEST(Ch01Costs, MoeCountsOnlyTheActiveExperts) {
  ModelConfig c;
  c.experts = 8;
  c.topk = 2;
  ModelConfig dense = c;
  dense.experts = 0;
  // Per layer: the router (E*C) plus k experts instead of one MLP.
  const std::int64_t extra = c.layers * (8LL * c.dim + 3LL * c.dim * c.ffn);
  EXPECT_EQ(matmul_params_per_token(c), matmul_params_per_token(dense) + extra);
}

TEST(Ch01Costs, StateAndActivationBytes) {
  ModelConfig c;
  const StateBytes s = state_bytes(c);
  EXPECT_EQ(s.params, 4 * param_count(c));
  EXPECT_EQ(s.adam, 2 * s.params);
  const ActivationBytes a = activation_bytes(c);
  EXPECT_GT(a.forward, a.saved);  // this implementation keeps more than the minimum
  c.experts = 4;
  c.topk = 2;
  const std::int64_t N = static_cast<std::int64_t>(c.batch) * c.seq;
  const std::vector<std::int64_t> dropless(static_cast<std::size_t>(c.layers), N * c.topk);
  EXPECT_EQ(activation_bytes(c).forward, activation_bytes(c, dropless).forward);
  std::vector<std::int64_t> fewer = dropless;
  fewer[0] -= 10;  // ten assignments dropped in layer 0: 10 * (3C + 3F + 2) fewer floats
  EXPECT_EQ(activation_bytes(c, dropless).forward - activation_bytes(c, fewer).forward,
            4 * 10 * (3LL * c.dim + 3LL * c.ffn + 2));
  EXPECT_THROW(activation_bytes(c, {1}), Error);
}

}  // namespace
}  // namespace fivefold::ch01
