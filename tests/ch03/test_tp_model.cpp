// SPDX-License-Identifier: MIT
// Chapter 03's whole model against nn::Model at the world size this runs on (np 1, 2, 3, 4):
// AdamW steps (loss, step-0 gradients, final parameters), the replicated norms bit for bit, the
// counted all-reduces of a step and of generation vs the formulas, greedy tokens, and the layers
// on TP sub-groups of a larger world (as chapter 07 uses them).
#include "chapters/03_tensor_parallel/tp_costs.hpp"
#include "chapters/03_tensor_parallel/tp_model.hpp"
#include "nn/adamw.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"
#include "tp_test_util.hpp"

namespace fivefold::test {
namespace {

using ch03::Split;

/// Trains nn::Model and a TpModel on @p tp side by side for cfg.steps steps and checks every step.
void train_and_compare(Ops& ops, Communicator& tp, const ModelConfig& cfg) {
  nn::Model serial(ops, cfg);
  ch03::TpModel model(ops, tp, cfg);
  nn::AdamW sopt(ops, nn::AdamWConfig::from(cfg), serial.params());
  nn::AdamW topt(ops, nn::AdamWConfig::from(cfg));
  for (nn::Param& p : model.params().all()) topt.add(p.value, p.grad);
  const ch03::CommCost fwd = ch03::model_forward_cost(cfg), bwd = ch03::model_backward_cost(cfg);
  for (int k = 0; k < cfg.steps; ++k) {
    const nn::Batch b = nn::synthetic_batch(cfg.seed, cfg.vocab, cfg.batch, cfg.seq, k * cfg.batch);
    serial.zero_grad();
    const double want = serial.forward(b.inputs, b.targets);
    serial.backward();
    model.zero_grad();
    tp.reset_counts();
    const double got = model.forward(b.inputs, b.targets);
    EXPECT_EQ(counted(tp).calls, fwd.calls) << "forward, step " << k;
    EXPECT_EQ(counted(tp).payload_bytes, fwd.bytes) << "forward, step " << k;
    tp.reset_counts();
    model.backward();
    EXPECT_EQ(counted(tp).calls, bwd.calls) << "backward, step " << k;
    EXPECT_EQ(counted(tp).payload_bytes, bwd.bytes) << "backward, step " << k;
    EXPECT_NEAR(got, want, 1e-5 * want) << "loss, step " << k;
    if (k == 0) {
      EXPECT_LT(rel_shard(model.logits(), serial.logits(), Split::cols, tp), 1e-5);
      for (nn::Param& p : model.params().all())
        EXPECT_LT(rel_shard(p.grad, serial.params().get(p.name).grad, ch03::split_of(p.name), tp), 1e-5) << p.name;
    }
    sopt.step();
    topt.step();
  }
  for (nn::Param& p : model.params().all()) {
    EXPECT_LT(rel_shard(p.value, serial.params().get(p.name).value, ch03::split_of(p.name), tp), 1e-4) << p.name;
    if (ch03::split_of(p.name) != Split::replicated) continue;
    Tensor all = ops.empty({tp.size(), p.value.numel()});
    tp.all_gather(p.value, all);
    for (int q = 1; q < tp.size(); ++q)  // replicated weights must not drift apart
      EXPECT_EQ(rel(all.narrow(q, 1), all.narrow(0, 1)), 0.0) << p.name << " differs on TP rank " << q;
  }
  EXPECT_EQ(model.params().numel(), ch03::params_per_rank(cfg, tp.size()));
}

class TpModelTest : public TpTest {};

TEST_F(TpModelTest, TrainsLikeSerialWithGqa) { train_and_compare(ops(), world(), small_config(world().size())); }

TEST_F(TpModelTest, TrainsLikeSerialWithMhaOneLayer) {
  ModelConfig cfg = small_config(world().size(), 2, 2);
  cfg.layers = 1;
  train_and_compare(ops(), world(), cfg);
}

TEST_F(TpModelTest, GeneratesTheSerialTokens) {
  Communicator& tp = world();
  const ModelConfig cfg = small_config(tp.size(), 4, 1);
  nn::Model serial(ops(), cfg);
  ch03::TpModel model(ops(), tp, cfg);
  const nn::Batch b = nn::synthetic_batch(cfg.seed, cfg.vocab, 3, 5);
  tp.reset_counts();
  const Tensor ours = model.generate(b.inputs, 6);
  const ch03::CommCost ar = ch03::generation_all_reduce_cost(cfg, 3, 5, 6);
  const ch03::CommCost ag = ch03::generation_all_gather_cost(3, 6);
  EXPECT_EQ(counted(tp).calls, ar.calls);
  EXPECT_EQ(counted(tp).payload_bytes, ar.bytes);
  EXPECT_EQ(counted(tp, "all_gather").calls, ag.calls);
  EXPECT_EQ(counted(tp, "all_gather").payload_bytes, ag.bytes);
  EXPECT_EQ(ours.to_ivector(), serial.generate(b.inputs, 6, true).to_ivector());
}

TEST_F(TpModelTest, RunsOnTpSubGroupsOfTheWorld) {
  const int w = world().size();
  if (w < 4 || w % 2 != 0) GTEST_SKIP() << "needs an even world of at least 4 ranks (two TP groups of 2)";
  std::unique_ptr<Communicator> tp = world().split(world().rank() / 2, world().rank(), "tp");
  ASSERT_EQ(tp->size(), 2);
  world().reset_counts();
  ModelConfig cfg = small_config(2);
  cfg.steps = 2;
  train_and_compare(ops(), *tp, cfg);
  EXPECT_TRUE(world().counts().empty()) << "the TP layers must use their group, never the world";
}

}  // namespace
}  // namespace fivefold::test
