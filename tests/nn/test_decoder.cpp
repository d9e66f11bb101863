// SPDX-License-Identifier: MIT
// The composable decoder (nn/decoder.hpp): what pipeline, zero-bubble and sequence-split layouts
// will rely on, checked on the serial parts. Chunks chained by hand equal the whole model bit for
// bit; several microbatches in flight (each with its own ChunkActs) sum to the whole batch's
// gradient; W deferred after every B gives bitwise the gradients of the plain backward; hooks fire
// once per unit, after_backward only after the unit's W; a Pass's global positions are what the
// attention uses; parameters know their full shape and block.
#include <gtest/gtest.h>

#include "backends/cpu/eigen_ops.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"
#include "nn/train_step.hpp"
#include "tests/nn/nn_test_util.hpp"

namespace fivefold {
namespace {

using testing_nn::tiny_model;

ModelConfig small_moe() {
  ModelConfig c = tiny_model();
  c.layers = 3;
  c.batch = 4;
  c.experts = 3;
  c.topk = 2;
  c.moe_every = 2;  // layer 1 is MoE
  c.aux_coef = 0.05;
  return c;
}

std::vector<std::vector<float>> grads_of(nn::ParamRegistry& reg) {
  std::vector<std::vector<float>> g;
  for (nn::Param& p : reg.all()) g.push_back(p.grad.to_vector());
  return g;
}

double max_rel(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, ref::rel_l2(ref::Vec(a[i].begin(), a[i].end()), ref::Vec(b[i].begin(), b[i].end())));
  return worst;
}

nn::Batch batch_of(const ModelConfig& c) {
  return {testing_nn::random_ints("in", {c.batch, c.seq}, c.vocab), testing_nn::random_ints("out", {c.batch, c.seq}, c.vocab)};
}

TEST(Decoder, ChunksChainedByHandEqualTheWholeModelBitwise) {
  EigenOps ops;
  const ModelConfig cfg = small_moe();
  const nn::Batch b = batch_of(cfg);
  nn::Model whole(ops, cfg);
  const double loss = whole.forward(b.inputs, b.targets);
  whole.backward();
  // Three chunks over one registry of the same parameters, as three pipeline stages would hold them.
  nn::ParamRegistry reg(ops, cfg.seed);
  reg.add_model(cfg);
  nn::SerialParts parts(ops, cfg);
  nn::Decoder staged(ops, cfg, reg, parts, {{0, 1}, {1, 2}, {2, 3}});
  ASSERT_EQ(staged.num_chunks(), 3);
  EXPECT_TRUE(staged.chunk(0).has_embedding() && !staged.chunk(0).has_head());
  EXPECT_TRUE(staged.chunk(2).has_head() && !staged.chunk(2).has_embedding());
  std::vector<std::unique_ptr<nn::ChunkActs>> acts;
  const Tensor* x = nullptr;
  Tensor none;
  for (int c = 0; c < 3; ++c) {
    acts.push_back(staged.chunk(c).new_acts());
    acts[c]->pass.tokens = b.inputs;
    acts[c]->pass.targets = b.targets;
    acts[c]->pass.pos = nn::positions(ops, 0, cfg.seq);
    x = &staged.chunk(c).forward(*acts[c], x ? *x : none);  // TUTORIAL: the "send" of a stage boundary
  }
  double aux = 0;
  for (auto& a : acts) aux += a->aux;
  EXPECT_EQ(acts[2]->ce + aux, loss);
  const Tensor* dy = &none;
  for (int c = 2; c >= 0; --c) dy = &staged.chunk(c).backward(*acts[c], *dy);
  EXPECT_EQ(max_rel(grads_of(reg), grads_of(whole.params())), 0.0);
}

TEST(Decoder, DeferredWeightPassesGiveTheSameGradientsBitwise) {
  EigenOps ops;
  const ModelConfig cfg = small_moe();
  const nn::Batch b = batch_of(cfg);
  nn::Model plain(ops, cfg), split(ops, cfg);
  plain.forward(b.inputs, b.targets);
  plain.backward();
  // Every B first (the order a zero-bubble stage runs them in), then every W; the hook that says
  // "this unit's gradients are complete" must wait for its W.
  auto a = split.chunk(0).new_acts();
  a->pass.tokens = b.inputs;
  a->pass.targets = b.targets;
  a->pass.pos = nn::positions(ops, 0, cfg.seq);
  split.chunk(0).forward(*a, Tensor());
  std::vector<int> before, after;
  nn::UnitHooks h;
  h.before_backward = [&](int u) { before.push_back(u); };
  h.after_backward = [&](int u) { after.push_back(u); };
  split.chunk(0).backward_input(*a, Tensor(), h);
  EXPECT_EQ(before, (std::vector<int>{4, 3, 2, 1, 0}));
  EXPECT_TRUE(after.empty()) << "a unit was declared complete before its weight gradients";
  const auto mid = grads_of(split.params());
  split.chunk(0).backward_weight(*a, h);
  EXPECT_EQ(after, (std::vector<int>{4, 3, 2, 1, 0}));
  EXPECT_EQ(max_rel(grads_of(split.params()), grads_of(plain.params())), 0.0);
  EXPECT_GT(max_rel(mid, grads_of(plain.params())), 0.1) << "B alone must not produce the weight gradients";
}

TEST(Decoder, MicrobatchesInFlightSumToTheWholeBatchGradient) {
  EigenOps ops;
  const ModelConfig cfg = small_moe();
  const nn::Batch b = batch_of(cfg);
  nn::Model whole(ops, cfg), micro(ops, cfg);
  testing_nn::randomize(whole.params());  // decisive routing: no near-ties for rounding to flip
  testing_nn::randomize(micro.params());
  const double loss = whole.forward(b.inputs, b.targets);
  whole.backward();
  // Two microbatches of B/2 sequences, both forwards before either backward (GPipe), each in its
  // own ChunkActs; the loss normaliser is the global 1/(B*T) and the aux weight (B/2)/B.
  const int m = 2, bm = cfg.batch / m;
  std::vector<std::unique_ptr<nn::ChunkActs>> acts;
  double total = 0;
  for (int k = 0; k < m; ++k) {
    acts.push_back(micro.chunk(0).new_acts());
    nn::Pass& p = acts[k]->pass;
    p.tokens = b.inputs.narrow(k * bm, bm);
    p.targets = b.targets.narrow(k * bm, bm);
    p.pos = nn::positions(ops, 0, cfg.seq);
    p.loss_scale = 1.0 / (cfg.batch * cfg.seq);
    p.aux_scale = 1.0 / m;
    micro.chunk(0).forward(*acts[k], Tensor());
    total += (acts[k]->ce + acts[k]->aux) / m;
  }
  for (int k = m - 1; k >= 0; --k) micro.chunk(0).backward(*acts[k], Tensor());
  EXPECT_NEAR(total, loss, 1e-6 * std::abs(loss));
  EXPECT_LT(max_rel(grads_of(micro.params()), grads_of(whole.params())), 1e-5);
}

/// Records which hooks a step asked for, and adds nothing else.
class RecordingSync : public nn::Synchroniser {
 public:
  explicit RecordingSync(nn::ParamRegistry& p) : p_(p) {}
  void zero_grad() override { p_.zero_grad(); }
  nn::UnitHooks hooks(bool last) override {
    asked.push_back(last);
    nn::UnitHooks h;
    if (last) h.after_backward = [this](int u) { synced.push_back(u); };
    return h;
  }
  void finish() override { ++finished; }
  void update() override { ++updated; }
  std::vector<bool> asked;
  std::vector<int> synced;
  int finished = 0, updated = 0;

 private:
  nn::ParamRegistry& p_;
};

TEST(TrainStep, MicrobatchesAccumulateAndSynchroniseOnlyInTheLastBackward) {
  EigenOps ops;
  const ModelConfig cfg = small_moe();
  const nn::Batch b = batch_of(cfg);
  nn::Model whole(ops, cfg), micro(ops, cfg);
  testing_nn::randomize(whole.params());
  testing_nn::randomize(micro.params());
  RecordingSync one(whole.params()), four(micro.params());
  const double loss = nn::train_step(whole, one, b);
  std::vector<nn::Batch> parts;  // uneven: 1 + 3 sequences
  parts.push_back({b.inputs.narrow(0, 1), b.targets.narrow(0, 1)});
  parts.push_back({b.inputs.narrow(1, 3), b.targets.narrow(1, 3)});
  const double mloss = nn::train_step(micro, four, parts);
  EXPECT_NEAR(mloss, loss, 1e-6 * std::abs(loss));
  EXPECT_LT(max_rel(grads_of(micro.params()), grads_of(whole.params())), 1e-5);
  EXPECT_EQ(four.asked, (std::vector<bool>{false, true}));
  EXPECT_EQ(four.synced, (std::vector<int>{4, 3, 2, 1, 0})) << "gradients synchronised once, in the last backward";
  EXPECT_EQ(four.finished, 1);
  EXPECT_EQ(four.updated, 1);
}

TEST(TrainStep, LocalUpdateIsTheSerialStepBitwise) {
  EigenOps ops;
  ModelConfig cfg = tiny_model();
  const nn::Batch b = batch_of(cfg);
  nn::Model by_hand(ops, cfg), stepped(ops, cfg);
  nn::AdamW opt(ops, nn::AdamWConfig::from(cfg), by_hand.params());
  nn::LocalUpdate local(ops, stepped.params(), nn::AdamWConfig::from(cfg));
  for (int k = 0; k < 2; ++k) {
    by_hand.zero_grad();
    const double l = by_hand.forward(b.inputs, b.targets);
    by_hand.backward();
    opt.step();
    EXPECT_EQ(nn::train_step(stepped, local, b), l);
  }
  for (std::size_t i = 0; i < by_hand.params().all().size(); ++i)
    EXPECT_EQ(by_hand.params().all()[i].value.to_vector(), stepped.params().all()[i].value.to_vector());
}

TEST(Decoder, GlobalPositionsReachTheAttention) {
  EigenOps ops;
  ModelConfig cfg = tiny_model();
  cfg.layers = 1;
  const nn::Batch b = batch_of(cfg);
  nn::Model m(ops, cfg);
  testing_nn::randomize(m.params());
  auto run = [&](const std::vector<std::int32_t>& pos) {
    auto a = m.chunk(0).new_acts();
    a->pass.tokens = b.inputs;
    a->pass.pos = ops.upload(Tensor::from_vector(pos, {cfg.seq}));
    return m.chunk(0).forward(*a, Tensor()).clone();
  };
  // RoPE depends on distances only: a shifted copy of 0..T-1 gives the same scores (up to
  // rounding). A gap (the zigzag chunks of context parallelism) changes the distances.
  const Tensor plain = run({0, 1, 2, 3, 4}), shifted = run({7, 8, 9, 10, 11}), gap = run({0, 1, 2, 9, 10});
  EXPECT_LT(ref::rel_l2(ref::to_double(shifted), ref::to_double(plain)), 1e-5);
  EXPECT_GT(ref::rel_l2(ref::to_double(gap), ref::to_double(plain)), 1e-3) << "RoPE ignored the pass's positions";
}

TEST(Decoder, ParametersKnowTheirBlockAndTheirGroup) {
  EigenOps ops;
  const ModelConfig cfg = small_moe();
  nn::ParamRegistry reg(ops, cfg.seed);
  nn::Param& q = reg.add_block("layers.0.self_attn.q_proj.weight", {8, 8}, {4, 0}, {4, 8});
  EXPECT_TRUE(q.sharded());
  EXPECT_EQ(q.full, (Shape{8, 8}));
  EXPECT_EQ(q.start, (Shape{4, 0}));
  const Tensor full = nn::param_init(cfg.seed, q.name, {8, 8});
  EXPECT_EQ(q.value.to_vector(), full.narrow(4, 4).to_vector()) << "a block must equal that slice of the whole";
  EXPECT_EQ(q.sum_axes, nn::kSumDp | nn::kSumSp | nn::kSumEp);
  nn::Param& e = reg.add("layers.1.moe.experts.2.up_proj.weight", {12, 8});
  EXPECT_FALSE(e.sharded());
  EXPECT_EQ(e.sum_axes, nn::kSumDp | nn::kSumSp) << "an expert's gradient is summed only where the same expert lives";
}

}  // namespace
}  // namespace fivefold
