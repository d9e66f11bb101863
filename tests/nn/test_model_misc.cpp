// SPDX-License-Identifier: MIT
// The rest of nn/: AdamW over the registry vs torch semantics, KV-cache generation vs
// full recompute, backward accumulation, the registry's names/shapes/init, ModelConfig
// validation and JSON, the synthetic task, and a short training run whose loss must fall.
#include <cmath>

#include <gtest/gtest.h>

#include "backends/cpu/eigen_ops.hpp"
#include "common/cli.hpp"
#include "nn/adamw.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"
#include "tests/nn/nn_test_util.hpp"

namespace fivefold {
namespace {

using ref::Vec;
using testing_nn::expect_rel;

using testing_nn::tiny_model;

TEST(NnModel, AdamWOverTheRegistryMatchesTorchForThreeSteps) {
  EigenOps ops;
  ModelConfig cfg = tiny_model();
  cfg.lr = 0.01;
  cfg.weight_decay = 0.1;
  nn::Model model(ops, cfg);
  nn::AdamW opt(ops, nn::AdamWConfig::from(cfg), model.params());
  std::map<std::string, Vec> p, m, v;
  for (nn::Param& q : model.params().all()) {
    p[q.name] = ref::to_double(q.value);
    m[q.name] = v[q.name] = Vec(q.value.numel(), 0.0);
  }
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8, lr = 0.01, wd = 0.1;
  for (int step = 1; step <= 3; ++step) {
    for (nn::Param& q : model.params().all())
      q.grad.copy_from(testing_nn::random_tensor(q.name + std::to_string(step), q.grad.shape()));
    opt.step();
    for (nn::Param& q : model.params().all()) {
      const Vec g = ref::to_double(q.grad);
      Vec& P = p[q.name];
      for (std::size_t i = 0; i < P.size(); ++i) {  // torch.optim.AdamW, written out
        P[i] *= 1.0 - lr * wd;
        m[q.name][i] = b1 * m[q.name][i] + (1 - b1) * g[i];
        v[q.name][i] = b2 * v[q.name][i] + (1 - b2) * g[i] * g[i];
        P[i] -= lr / (1 - std::pow(b1, step)) * m[q.name][i] /
                (std::sqrt(v[q.name][i]) / std::sqrt(1 - std::pow(b2, step)) + eps);
      }
      // Params are ~0.02 and move ~0.01 per step: fp32 rounding stays ~1e-7 relative.
      const double e = ref::rel_l2(ref::to_double(q.value), P);
      EXPECT_LE(e, 1e-5) << q.name << " after step " << step;
    }
  }
  EXPECT_EQ(opt.steps(), 3);
}

TEST(NnModel, BackwardAccumulatesIntoGrads) {
  EigenOps ops;
  nn::Model model(ops, tiny_model());
  const nn::Batch b = nn::synthetic_batch(1, 11, 2, 5);
  model.zero_grad();
  model.forward(b.inputs, b.targets);
  model.backward();
  std::vector<Vec> once;
  for (nn::Param& q : model.params().all()) once.push_back(ref::to_double(q.grad));
  model.forward(b.inputs, b.targets);
  model.backward();
  std::size_t i = 0;
  for (nn::Param& q : model.params().all()) {
    Vec twice = once[i++];
    for (double& x : twice) x *= 2.0;
    EXPECT_LE(ref::rel_l2(ref::to_double(q.grad), twice), 1e-6) << q.name;
  }
}

// Routing by hand: exact ties go to the lower expert index; the capacity ceil(1*2*4/3) = 3
// drops expert 1's fourth assignment (token 3); f counts assignments before the drop.
TEST(NnModel, RoutingTiesCapacityAndAuxByHand) {
  const std::vector<float> probs{0.4f, 0.4f, 0.2f, 0.2f, 0.4f, 0.4f, 0.5f, 0.3f, 0.2f, 0.3f, 0.6f, 0.1f};
  EXPECT_EQ(nn::expert_capacity(1.0, 2, 4, 3), 3);
  EXPECT_EQ(nn::expert_capacity(1.25, 2, 16, 4), 10);
  EXPECT_EQ(nn::expert_capacity(0.0, 2, 16, 4), 32);
  const nn::Routing r = nn::route_tokens(probs, 4, 3, 2, 1.0, 0.1);
  EXPECT_EQ(r.choice, (std::vector<std::int32_t>{0, 1, 1, 2, 0, 1, 1, 0}));
  EXPECT_EQ(r.kept, (std::vector<std::uint8_t>{1, 1, 1, 1, 1, 1, 0, 1}));
  EXPECT_EQ(r.dropped, 1);
  EXPECT_EQ(r.expert_tokens[0], (std::vector<std::int32_t>{0, 2, 3}));
  EXPECT_EQ(r.expert_tokens[1], (std::vector<std::int32_t>{0, 1, 2}));
  EXPECT_EQ(r.expert_tokens[2], (std::vector<std::int32_t>{1}));
  const std::vector<float> gates{0.5f, 0.5f, 0.5f, 0.5f, 0.625f, 0.375f, 0.6f / 0.9f, 0.3f / 0.9f};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(r.gate[i], gates[i], 1e-6) << "gate " << i;
  // aux = 0.1 * 3 * (3/8 * 0.35 + 4/8 * 0.425 + 1/8 * 0.225)
  EXPECT_NEAR(r.aux_loss, 0.1 * 3 * 0.371875, 1e-7);
  EXPECT_NEAR(r.aux_dprobs[1], 0.1 * 3 * 0.5 / 4, 1e-12);  // d aux / d p[token 0, expert 1]
}

void check_generation(ModelConfig cfg) {
  EigenOps ops;
  nn::Model model(ops, cfg);
  testing_nn::randomize(model.params(), 0.5f, 1.0f);
  const Tensor prompt = testing_nn::random_ints("prompt", {2, 3}, cfg.vocab);
  const Tensor full = model.generate(prompt, 9, /*use_cache=*/false);
  const Tensor cached = model.generate(prompt, 9, /*use_cache=*/true);
  EXPECT_EQ(full.shape(), (Shape{2, 12}));
  EXPECT_EQ(full.to_ivector(), cached.to_ivector()) << "KV-cache generation differs from full recompute";
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 3; ++t) EXPECT_EQ(cached.at<std::int32_t>(b * 12 + t), prompt.at<std::int32_t>(b * 3 + t));
}

TEST(NnModel, KvCacheGenerationEqualsFullRecompute) { check_generation(tiny_model()); }

TEST(NnModel, KvCacheGenerationEqualsFullRecomputeMoe) {
  ModelConfig c = tiny_model();
  c.experts = 4;
  c.topk = 2;
  c.capacity_factor = 1.0;  // generation routes dropless on both paths
  check_generation(c);
}

// The cached attention step gives the full attention's rows, row for row (a stronger check
// than equal argmax tokens).
TEST(NnModel, CachedAttentionRowsEqualFullAttention) {
  EigenOps ops;
  const std::int64_t B = 2, T = 6, C = 8, H = 4, Hkv = 2, hd = 2;
  nn::ParamRegistry reg(ops, 3);
  reg.add("a.q_proj.weight", {H * hd, C});
  reg.add("a.k_proj.weight", {Hkv * hd, C});
  reg.add("a.v_proj.weight", {Hkv * hd, C});
  reg.add("a.o_proj.weight", {C, H * hd});
  testing_nn::randomize(reg, 0.5f);
  nn::Attention attn(ops, nn::attention_weights(reg, "a"), H, Hkv, hd, 10000.0f);
  const Tensor x = testing_nn::random_tensor("x", {B, T, C});
  const Vec full = ref::to_double(attn.forward(x, nn::positions(ops, 0, T)));
  nn::KvCache cache(ops, B, T + 2, Hkv, hd);
  Vec rows(full.size());
  auto put = [&](const Tensor& y, std::int64_t start, std::int64_t n) {
    const Vec v = ref::to_double(y);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t i = 0; i < n * C; ++i) rows[(b * T + start) * C + i] = v[b * n * C + i];
  };
  put(attn.forward_cached(nn::slice_dim1(ops, x, 0, 2), 0, cache), 0, 2);  // prefill 2
  for (std::int64_t t = 2; t < T; ++t) put(attn.forward_cached(nn::slice_dim1(ops, x, t, 1), t, cache), t, 1);
  expect_rel("cached attention rows vs full forward", rows, full, 1e-6);
}

TEST(NnModel, RegistryNamesShapesAndInit) {
  ModelConfig c = tiny_model();
  c.experts = 3;
  c.moe_every = 2;
  const std::vector<nn::ParamSpec> specs = nn::model_param_specs(c);
  auto find = [&](const std::string& n) -> Shape {
    for (const auto& s : specs)
      if (s.name == n) return s.shape;
    return {};
  };
  EXPECT_EQ(find("embed_tokens.weight"), (Shape{11, 8}));
  EXPECT_EQ(find("layers.0.self_attn.q_proj.weight"), (Shape{8, 8}));
  EXPECT_EQ(find("layers.0.self_attn.k_proj.weight"), (Shape{4, 8}));
  EXPECT_EQ(find("layers.0.self_attn.o_proj.weight"), (Shape{8, 8}));
  EXPECT_EQ(find("layers.0.mlp.down_proj.weight"), (Shape{8, 12}));
  EXPECT_EQ(find("layers.1.moe.router.weight"), (Shape{3, 8}));
  EXPECT_EQ(find("layers.1.moe.experts.2.gate_proj.weight"), (Shape{12, 8}));
  EXPECT_TRUE(find("layers.1.mlp.gate_proj.weight").empty());
  EXPECT_EQ(find("norm.weight"), (Shape{8}));
  EXPECT_EQ(find("lm_head.weight"), (Shape{11, 8}));
  EXPECT_EQ(specs.size(), 1u + 6 + 3 + 6 + 1 + 9 + 2);
  EXPECT_EQ(c.moe_layers(), std::vector<int>{1});
  // Norm gains are ones; weights ~ N(0, 0.02); a block equals the slice of the full draw.
  const Tensor g = nn::param_init(5, "layers.0.input_layernorm.weight", {8});
  for (float x : g.to_vector()) EXPECT_EQ(x, 1.0f);
  const Tensor w = nn::param_init(5, "lm_head.weight", {64, 64});
  const double sd = std::sqrt(EigenOps().sum_squares(w) / w.numel());
  EXPECT_NEAR(sd, 0.02, 0.002);
  const Tensor blk = nn::param_init_block(5, "lm_head.weight", {64, 64}, {16, 32}, {8, 16});
  for (int r = 0; r < 8; ++r)
    for (int col = 0; col < 16; ++col) EXPECT_EQ(blk.at<float>(r * 16 + col), w.at<float>((16 + r) * 64 + 32 + col));
}

void expect_usage_error(ModelConfig c, const std::string& mentions) {
  try {
    c.validate();
    ADD_FAILURE() << "no error; expected one mentioning " << mentions;
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
  }
}

TEST(NnModel, ConfigValidationAndJson) {
  ModelConfig ok;
  EXPECT_NO_THROW(ok.validate());
  ModelConfig c = ok;
  c.heads = 3;  // 64 % 3
  expect_usage_error(c, "--heads 3 does not divide --dim 64");
  c = ok;
  c.dim = 12, c.heads = 4;  // hd 3
  expect_usage_error(c, "odd");
  c = ok;
  c.kv_heads = 3;
  expect_usage_error(c, "--kv-heads 3 does not divide --heads 4");
  c = ok;
  c.experts = 2, c.topk = 3;
  expect_usage_error(c, "--topk 3");
  c = ok;
  c.vocab = 1;
  expect_usage_error(c, "--vocab");
  c = ok;
  c.ffn = 0;
  expect_usage_error(c, "--ffn must be >= 1");
  c = ok;
  c.experts = 0, c.topk = 5;  // top-k is irrelevant without experts
  EXPECT_NO_THROW(c.validate());
  const nlohmann::json j = ok.to_json();
  for (const char* key : {"vocab", "seq", "dim", "heads", "kv_heads", "ffn", "layers", "batch", "steps", "lr", "seed",
                          "experts", "topk", "capacity_factor", "aux_coef", "beta1", "beta2", "eps", "weight_decay",
                          "rope_theta", "norm_eps", "moe_layers"})
    EXPECT_TRUE(j.contains(key)) << key;
  // The options parse into the config; a non-positive size is refused by the parser.
  ModelConfig parsed;
  Cli cli("t", "test");
  add_model_options(cli.app(), parsed);
  const char* argv[] = {"t", "--dim", "16", "--kv-heads", "1", "--experts", "4", "--capacity-factor", "1.5"};
  EXPECT_FALSE(cli.parse(9, const_cast<char**>(argv), false).has_value());
  EXPECT_EQ(parsed.dim, 16);
  EXPECT_EQ(parsed.kv_heads, 1);
  EXPECT_EQ(parsed.experts, 4);
  EXPECT_EQ(parsed.capacity_factor, 1.5);
  ModelConfig bad;
  Cli cli2("t", "test");
  add_model_options(cli2.app(), bad);
  const char* argv2[] = {"t", "--dim", "0"};
  EXPECT_THROW(cli2.parse(3, const_cast<char**>(argv2), false), UsageError);
}

TEST(NnModel, SyntheticDataFollowsItsRule) {
  const nn::Batch a = nn::synthetic_batch(42, 64, 8, 32), b = nn::synthetic_batch(42, 64, 8, 32);
  EXPECT_EQ(a.inputs.to_ivector(), b.inputs.to_ivector());
  const std::vector<std::int32_t> in = a.inputs.to_ivector(), tg = a.targets.to_ivector();
  int hits = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    hits += tg[i] == (3 * in[i] + 1) % 64;
    if (i % 32 != 31) {
      EXPECT_EQ(in[i + 1], tg[i]);  // targets are the inputs shifted by one
    }
  }
  EXPECT_NEAR(hits / double(in.size()), 0.9, 0.06);
  EXPECT_NE(nn::synthetic_batch(43, 64, 8, 32).inputs.to_ivector(), in);
  EXPECT_NEAR(nn::synthetic_entropy(64), 0.73, 0.01);
}

TEST(NnModel, DefaultRunLearns) {
  EigenOps ops;
  const ModelConfig cfg;  // the defaults a chapter runs with
  nn::Model model(ops, cfg);
  nn::AdamW opt(ops, nn::AdamWConfig::from(cfg), model.params());
  const nn::Batch b = nn::synthetic_batch(cfg.seed, cfg.vocab, cfg.batch, cfg.seq);
  std::vector<double> loss;
  for (int s = 0; s < cfg.steps; ++s) {
    model.zero_grad();
    loss.push_back(model.forward(b.inputs, b.targets));
    model.backward();
    opt.step();
  }
  std::printf("  loss %.4f -> %.4f over %d steps (ln V = %.4f)\n", loss.front(), loss.back(), cfg.steps,
              std::log(double(cfg.vocab)));
  EXPECT_NEAR(loss.front(), std::log(double(cfg.vocab)), 0.1);
  EXPECT_LT(loss.back(), 0.5 * loss.front());
}

}  // namespace
}  // namespace fivefold
