// SPDX-License-Identifier: MIT
// Chapter 07's hybrid model at the world size this runs on: every layout of tp, sp, ep, dp, pp
// whose product is the world (dense and MoE, ring/zigzag on the sp axis or Megatron-SP inside
// tp, bucketed DDP or ZeRO-1 over dp in 3D, any order) trains 3 AdamW steps equal to serial
// training; each rank's parameters equal their block of the serial ones; bad layouts are refused.
#include <gtest/gtest.h>

#include <array>

#include "backends/backend.hpp"
#include "chapters/07_hybrid_parallel/hybrid.hpp"
#include "common/check.hpp"
#include "common/summary.hpp"
#include "nn/model.hpp"

namespace fivefold::test {
namespace {

using namespace ch07;

class HybridTest : public ::testing::Test {
 protected:
  void SetUp() override { backend_ = make_backend("cpu"); }
  Ops& ops() { return *backend_.ops; }
  Communicator& world() { return *backend_.world; }
  Backend backend_;
};

ModelConfig dense() {
  ModelConfig c;
  c.layers = 4;
  c.dim = 32;
  c.heads = 4;
  c.kv_heads = 2;
  c.ffn = 32;
  c.vocab = 32;
  c.seq = 16;
  c.batch = 8;
  c.steps = 3;
  return c;
}

ModelConfig moe() {
  ModelConfig c = dense();
  c.experts = 4;
  c.topk = 2;
  c.moe_every = 1;
  c.aux_coef = 0.05;
  return c;
}

struct Layout {
  int tp = 1, sp = 1, ep = 1, dp = 1, pp = 1;
  std::string order = "tp-sp-ep-dp-pp";
  bool megatron = false;
  ch05::SpMode mode = ch05::SpMode::ring;
  int m = 2;
  bool zero1 = false;
  std::string str() const {
    return "tp" + std::to_string(tp) + " sp" + std::to_string(sp) + " ep" + std::to_string(ep) + " dp" +
           std::to_string(dp) + " pp" + std::to_string(pp) + " " + order + (megatron ? " megatron" : "") +
           (sp > 1 ? " " + ch05::sp_mode_name(mode) : "") + " m" + std::to_string(m) + (zero1 ? " zero1" : "");
  }
};

/// Trains @p l on this world and checks losses and final parameters against @p ref.
void train_and_check(Ops& ops, Communicator& world, const ModelConfig& cfg, const Layout& l, const nn::ReferenceRun& ref) {
  SCOPED_TRACE(l.str());
  const ProcessGrid grid({l.tp, l.sp, l.ep, l.dp, l.pp}, l.order, world.size());
  HybridConfig hc;
  hc.model = cfg;
  hc.megatron_sp = l.megatron;
  hc.sp_mode = l.mode;
  hc.microbatches = l.m;
  hc.dp.zero1 = l.zero1;
  ASSERT_EQ(hybrid_blocker(grid, hc), "");
  const GridComms comms(world, grid, hybrid_sets());
  HybridModel model(ops, world, comms, hc);
  auto sync = model.make_sync(nn::AdamWConfig::from(cfg));
  std::vector<double> losses;
  for (int k = 0; k < cfg.steps; ++k) losses.push_back(model.step(*sync, nn::stream_batch(cfg, k)));
  for (int k = 0; k < cfg.steps; ++k) EXPECT_NEAR(losses[k], ref.losses[k], 1e-5 * std::abs(ref.losses[k])) << "step " << k;
  const CheckResult c = compare_blocks("params", model.params(), ref.final, false, 1e-4);
  EXPECT_TRUE(c.passed) << "rank " << world.rank() << ": max rel err " << c.max_rel_err;
}

std::vector<Layout> layouts(int n, bool with_moe) {
  std::vector<Layout> out;
  for (int tp : {1, 2})
    for (int sp : {1, 2})
      for (int pp : {1, 2, 4})
        for (int ep : {1, 2}) {
          if (n % (tp * sp * pp * ep) != 0) continue;
          Layout l;
          l.tp = tp, l.sp = sp, l.pp = pp, l.ep = ep, l.dp = n / (tp * sp * pp * ep);
          if (!with_moe && ep > 1) continue;
          l.m = 8 / (l.dp * l.ep) >= 2 ? 2 : 1;  // 8 sequences
          if (with_moe && tp > 1) l.megatron = true, l.sp = 1;
          if (with_moe && tp > 1 && sp > 1) continue;
          out.push_back(l);
        }
  return out;
}

TEST_F(HybridTest, DenseLayoutsEqualSerial) {
  const ModelConfig cfg = dense();
  const nn::ReferenceRun ref = nn::train_reference(ops(), cfg, [&](int k) { return nn::stream_batch(cfg, k); });
  for (Layout l : layouts(world().size(), false)) {
    train_and_check(ops(), world(), cfg, l, ref);
    if (l.sp > 1) {  // the other ring layout
      l.mode = ch05::SpMode::zigzag;
      train_and_check(ops(), world(), cfg, l, ref);
    }
    if (l.tp > 1 && l.sp == 1) {  // Megatron-SP inside tp
      l.megatron = true;
      train_and_check(ops(), world(), cfg, l, ref);
    }
  }
}

TEST_F(HybridTest, ThreeDWithZeroOneAndAnotherOrder) {
  const ModelConfig cfg = dense();
  const nn::ReferenceRun ref = nn::train_reference(ops(), cfg, [&](int k) { return nn::stream_batch(cfg, k); });
  const int n = world().size();
  Layout l;
  l.tp = n % 2 == 0 ? 2 : 1;
  l.pp = n % 4 == 0 ? 2 : 1;
  l.dp = n / (l.tp * l.pp);
  l.m = l.dp >= 8 ? 1 : 2;
  l.zero1 = true;
  train_and_check(ops(), world(), cfg, l, ref);
  l.order = "dp-pp-tp-sp-ep";
  l.zero1 = false;
  train_and_check(ops(), world(), cfg, l, ref);
}

TEST_F(HybridTest, MoeLayoutsEqualSerial) {
  for (double cf : {0.0, 1.0}) {
    ModelConfig cfg = moe();
    cfg.capacity_factor = cf;  // with capacity, a split sequence needs the earlier positions' counts
    const nn::ReferenceRun ref = nn::train_reference(ops(), cfg, [&](int k) { return nn::stream_batch(cfg, k); });
    for (Layout l : layouts(world().size(), true)) {
      SCOPED_TRACE("capacity factor " + std::to_string(cf));
      train_and_check(ops(), world(), cfg, l, ref);
      if (l.sp > 1) {
        l.mode = ch05::SpMode::zigzag;
        train_and_check(ops(), world(), cfg, l, ref);
      }
    }
  }
}

TEST_F(HybridTest, BadLayoutsAreRefused) {
  HybridConfig hc;
  hc.model = dense();
  auto why = [&](std::array<int, 5> d) { return hybrid_blocker(ProcessGrid({d[0], d[1], d[2], d[3], d[4]}, "tp-sp-ep-dp-pp", d[0] * d[1] * d[2] * d[3] * d[4]), hc); };
  EXPECT_NE(why({3, 1, 1, 1, 1}).find("--tp 3"), std::string::npos);
  EXPECT_NE(why({1, 1, 2, 1, 1}).find("--ep 2"), std::string::npos);
  EXPECT_NE(why({1, 1, 1, 1, 8}).find("8"), std::string::npos);  // 4 layers over 8 stages
  hc.model.seq = 6;
  EXPECT_NE(why({1, 4, 1, 1, 1}).find("--seq 6"), std::string::npos);
  hc.model = moe();
  EXPECT_NE(why({2, 1, 1, 1, 1}).find("--sp-mode megatron"), std::string::npos);
  hc.model.experts = 6;
  EXPECT_NE(why({1, 1, 4, 1, 1}).find("--experts 6"), std::string::npos);
  hc.model = dense();
  hc.dp.zero1 = true;
  EXPECT_NE(why({1, 2, 1, 1, 1}).find("--zero 1"), std::string::npos);
}

}  // namespace
}  // namespace fivefold::test
