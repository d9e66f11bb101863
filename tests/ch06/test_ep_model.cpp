// SPDX-License-Identifier: MIT
// Chapter 06's model at the world size this runs on (np 1, 2, 3, 4 = ep x dp): top-1 and top-2,
// dropless and with capacity drops, aux loss on, with and without DP, trains several AdamW steps
// equal to serial training; the counted all-to-all bytes equal the formula computed from the
// serial run's routing; a layout where experts get no token works; bad layouts are refused.
#include <gtest/gtest.h>

#include <map>

#include "backends/backend.hpp"
#include "chapters/06_expert_parallel/ep_model.hpp"
#include "common/check.hpp"
#include "common/summary.hpp"
#include "nn/model.hpp"

namespace fivefold::test {
namespace {

class EpModelTest : public ::testing::Test {
 protected:
  void SetUp() override { backend_ = make_backend("cpu"); }
  Ops& ops() { return *backend_.ops; }
  Communicator& world() { return *backend_.world; }
  Backend backend_;
};

ModelConfig small(int world, int topk, double cf) {
  ModelConfig c;
  c.layers = 2;
  c.dim = 32;
  c.heads = 4;
  c.kv_heads = 2;
  c.ffn = 32;
  c.vocab = 32;
  c.seq = 8;
  c.batch = world == 3 ? 6 : 8;
  c.steps = 3;
  c.experts = world == 3 ? 6 : 8;
  c.topk = topk;
  c.capacity_factor = cf;
  c.aux_coef = 0.05;
  c.moe_every = 1;
  return c;
}

nn::Batch batch_of(const ModelConfig& cfg, int k) {
  return nn::stream_batch(cfg, k);
}

struct Serial {
  std::vector<double> losses;
  std::map<std::string, Tensor> final;
  std::vector<std::vector<nn::Routing>> routing;  // per step, per MoE layer
};

Serial serial(Ops& ops, const ModelConfig& cfg) {
  nn::Model model(ops, cfg);
  nn::LocalUpdate update(ops, model.params(), nn::AdamWConfig::from(cfg));
  Serial s;
  for (int k = 0; k < cfg.steps; ++k) {
    s.losses.push_back(nn::train_step(model, update, batch_of(cfg, k)));
    s.routing.emplace_back();
    for (auto& layer : model.layers())
      if (layer.moe()) s.routing.back().push_back(layer.moe()->routing());
  }
  for (const nn::Param& p : model.params().all()) s.final[p.name] = p.value.clone();
  return s;
}

double rel(const Tensor& a, const Tensor& b) { return compare("", a, b, 0.0).max_rel_err; }

OpCount counted(Communicator& g, const std::string& op) {
  const auto it = g.counts().find(op);
  return it == g.counts().end() ? OpCount{} : it->second;
}

/// Trains ep x dp (ep fastest) and checks it against @p ref. Returns the rows this rank received.
std::int64_t train_and_check(Ops& ops, Communicator& world, const ModelConfig& cfg, int ep, const Serial& ref) {
  const int dp = world.size() / ep, r = world.rank(), ep_c = r % ep, dp_c = r / ep;
  std::unique_ptr<Communicator> epg = world.split(dp_c, ep_c, "ep"), dpg = world.split(ep_c, dp_c, "dp"),
                                data = world.split(0, r, "data");
  ch06::EpModel model(ops, *epg, *dpg, *data, cfg);
  auto update = model.make_update(nn::AdamWConfig::from(cfg));
  const std::string what = "ep " + std::to_string(ep) + " dp " + std::to_string(dp) + " top-" +
                           std::to_string(cfg.topk) + " cf " + std::to_string(cfg.capacity_factor);
  for (int k = 0; k < cfg.steps; ++k) {
    const double loss = model.step(*update, batch_of(cfg, k));
    EXPECT_LT(std::abs(loss - ref.losses[k]), 1e-5 * std::abs(ref.losses[k])) << what << " step " << k;
  }
  for (const nn::Param& p : model.params().all())
    EXPECT_LT(rel(p.value, ref.final.at(p.name)), 1e-4) << what << " " << p.name;

  // The exchange's bytes, from the serial run's routing of every step and layer.
  const std::int64_t C = cfg.dim, T = cfg.seq, b = cfg.batch / world.size(), E = cfg.experts;
  std::int64_t rows = 0, calls = 0;
  for (const auto& step : ref.routing)
    for (const nn::Routing& rt : step) {
      const std::vector<std::int64_t> out = ch06::rows_to(rt, T, r * b, b, ep);
      std::int64_t sent = 0, got = 0;
      for (std::int64_t v : out) sent += v;
      for (int j = 0; j < ep; ++j) got += ch06::rows_to(rt, T, (dp_c * ep + j) * b, b, ep)[ep_c];
      rows += 2 * (sent + got);  // dispatch + combine, forward and backward
      calls += 4;
    }
  const std::int64_t layers = static_cast<std::int64_t>(ref.routing.size() * ref.routing[0].size());
  if (cfg.capacity_factor > 0) {
    const std::int64_t slots = b * nn::expert_capacity(cfg.capacity_factor, cfg.topk, T, static_cast<int>(E));
    EXPECT_EQ(counted(*epg, "all_to_all").payload_bytes, 4 * layers * E * slots * C * 4) << what;
    EXPECT_EQ(counted(*epg, "all_to_all").calls, 4 * layers) << what;
    EXPECT_EQ(counted(*epg, "all_to_allv").calls, 0) << what;
  } else {
    EXPECT_EQ(counted(*epg, "all_to_allv").payload_bytes, rows * C * 4) << what;
    EXPECT_EQ(counted(*epg, "all_to_allv").calls, calls) << what;
    EXPECT_EQ(counted(*epg, "all_to_all").payload_bytes, layers * E * 4) << what << " (the counts)";
  }
  return model.stats().received_rows;
}

void check_all(Ops& ops, Communicator& world, int topk, double cf) {
  const ModelConfig cfg = small(world.size(), topk, cf);
  const Serial ref = serial(ops, cfg);
  for (int ep = world.size(); ep >= 1; --ep)
    if (world.size() % ep == 0 && cfg.experts % ep == 0) train_and_check(ops, world, cfg, ep, ref);
}

TEST_F(EpModelTest, Top1DroplessEqualsSerial) { check_all(ops(), world(), 1, 0.0); }
TEST_F(EpModelTest, Top2DroplessEqualsSerial) { check_all(ops(), world(), 2, 0.0); }
TEST_F(EpModelTest, Top2WithCapacityDropsEqualsSerial) { check_all(ops(), world(), 2, 1.0); }
TEST_F(EpModelTest, Top1WithCapacityDropsEqualsSerial) { check_all(ops(), world(), 1, 0.5); }

TEST_F(EpModelTest, ExpertsWithoutTokensWork) {
  // One sequence of 2 tokens per rank, top-1 over 8 experts: most experts get nothing.
  ModelConfig cfg = small(world().size(), 1, 0.0);
  cfg.seq = 2;
  cfg.batch = world().size();
  cfg.experts = world().size() == 3 ? 6 : 8;
  const Serial ref = serial(ops(), cfg);
  const std::int64_t got = train_and_check(ops(), world(), cfg, world().size(), ref);
  std::int64_t idle = 0;
  for (const nn::Routing& rt : ref.routing[0])
    for (int e = 0; e < cfg.experts; ++e) idle += rt.expert_tokens[e].empty() ? 1 : 0;
  EXPECT_GT(idle, 0) << "the layout must leave some expert without a token";
  (void)got;
}

TEST_F(EpModelTest, ARankWhoseExpertsGetNoTokenWorks) {
  // Top-1 over E = 2 x ranks experts; the router rows of the LAST rank's experts are zero and
  // the others +-M e_0 (pairs), so every token's largest logit, M |x_0| >= 0, is a live expert:
  // the last rank receives no row, in the forward or the backward, and still trains along.
  const int n = world().size();
  if (n == 1) GTEST_SKIP() << "one rank holds every expert";
  ModelConfig cfg = small(n, 1, 0.0);
  cfg.experts = 2 * n;
  cfg.batch = 2 * n;
  auto set_router = [&](nn::ParamRegistry& reg) {
    for (int l = 0; l < cfg.layers; ++l) {
      nn::Param& w = reg.get("layers." + std::to_string(l) + ".moe.router.weight");
      std::vector<float> v(static_cast<std::size_t>(cfg.experts) * cfg.dim, 0.0f);
      for (int e = 0; e < 2 * (n - 1); ++e) v[static_cast<std::size_t>(e) * cfg.dim] = (e % 2 ? -10.0f : 10.0f);
      w.value.copy_from(ops().upload(Tensor::from_vector(v, w.value.shape())));
    }
  };
  nn::Model serial(ops(), cfg);
  set_router(serial.params());
  nn::LocalUpdate su(ops(), serial.params(), nn::AdamWConfig::from(cfg));
  std::unique_ptr<Communicator> ep = world().split(0, world().rank(), "ep"), dp = world().split(world().rank(), 0, "dp"),
                                data = world().split(0, world().rank(), "data");
  ch06::EpModel model(ops(), *ep, *dp, *data, cfg);
  set_router(model.params());
  auto update = model.make_update(nn::AdamWConfig::from(cfg));
  for (int k = 0; k < cfg.steps; ++k) {
    const double want = nn::train_step(serial, su, batch_of(cfg, k)), got = model.step(*update, batch_of(cfg, k));
    EXPECT_LT(std::abs(got - want), 1e-5 * std::abs(want)) << "step " << k;
  }
  const std::int64_t received = model.stats().received_rows;
  if (world().rank() == n - 1) {
    EXPECT_EQ(received, 0) << "the last rank's experts must get no token";
  }
  if (world().rank() == 0) {
    EXPECT_GT(received, 0);
  }
  for (const nn::Param& p : model.params().all())
    EXPECT_LT(rel(p.value, serial.params().get(p.name).value), 1e-4) << p.name;
}

TEST_F(EpModelTest, BadLayoutsAreRefusedWithOneLine) {
  ModelConfig c = small(4, 2, 0.0);
  EXPECT_NE(ch06::check_layout(c, 3, 1, 3).find("--experts 8 cannot be split over --ep 3"), std::string::npos);
  c.topk = 9;
  EXPECT_NE(ch06::check_layout(c, 2, 1, 2).find("--topk 9 is more than --experts 8"), std::string::npos);
  c.topk = 2;
  EXPECT_NE(ch06::check_layout(c, 2, 1, 4).find("ranks, but the job has 4"), std::string::npos);
  c.batch = 6;
  EXPECT_NE(ch06::check_layout(c, 4, 1, 4).find("--batch 6 cannot be split into whole sequences"), std::string::npos);
  c.experts = 0;
  EXPECT_NE(ch06::check_layout(c, 1, 1, 1).find("--experts 0"), std::string::npos);
}

}  // namespace
}  // namespace fivefold::test
