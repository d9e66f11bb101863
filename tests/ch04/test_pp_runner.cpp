// SPDX-License-Identifier: MIT
// Chapter 04's runner at the world size this runs on (np 1, 2, 3, 4 = pp): every schedule valid
// at that size trains a dense and a MoE model (capacity drops and aux loss on) several AdamW
// steps equal to serial training, the schedules equal one another bit for bit, an uneven split
// of layers works, the messages sent per route equal the layout's count, the generation's
// tokens equal serial generation, and a stage that sends out of order is caught, not hung.
#include <gtest/gtest.h>

#include <map>

#include "backends/backend.hpp"
#include "chapters/04_pipeline_parallel/pp_generate.hpp"
#include "chapters/04_pipeline_parallel/pp_runner.hpp"
#include "common/check.hpp"
#include "common/summary.hpp"
#include "nn/model.hpp"

namespace fivefold::test {
namespace {

class PpRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override { backend_ = make_backend("cpu"); }
  Ops& ops() { return *backend_.ops; }
  Communicator& world() { return *backend_.world; }
  Backend backend_;
};

/// A small model with 12 layers (so interleaving fits p = 2, 3 with v = 2 and p = 4 with v = 3).
ModelConfig small(bool moe) {
  ModelConfig c;
  c.layers = 12;
  c.dim = 32;
  c.heads = 4;
  c.kv_heads = 2;
  c.ffn = 48;
  c.vocab = 32;
  c.seq = 8;
  c.steps = 3;
  if (moe) {
    c.experts = 4;
    c.topk = 2;
    c.capacity_factor = 1.0;  // drops tokens: capacity per sequence, independent of the microbatching
    c.aux_coef = 0.05;
    c.moe_every = 2;
  }
  return c;
}

double rel(const Tensor& a, const Tensor& b) { return compare("", a, b, 0.0).max_rel_err; }

struct Result {
  std::vector<double> losses;
  std::map<std::string, Tensor> final;  // this rank's parameters
};

/// cfg.steps steps of @p kind over @p m microbatches on this rank's stage.
Result run(Ops& ops, Communicator& pp, const ModelConfig& cfg, ch04::ScheduleKind kind, int m, int v) {
  ch04::PipelineStage stage(ops, cfg, pp.size(), v, pp.rank());
  ch04::StageLink link(pp, ops);
  ch04::PipelineRunner runner(stage, link, ch04::make_schedule(kind, pp.size(), m, v));
  nn::LocalUpdate update(ops, stage.params(), nn::AdamWConfig::from(cfg));
  Result r;
  for (int k = 0; k < cfg.steps; ++k) {
    const nn::Batch b = nn::synthetic_batch(cfg.seed, cfg.vocab, cfg.batch, cfg.seq, k * cfg.batch);
    r.losses.push_back(runner.step(update, ch04::split_batch(b, m)));
  }
  // Messages this rank sent on each route: the layout's count, m per step per chunk boundary.
  std::int64_t want = 0, got = 0;
  for (int kv = pp.rank(); kv < v * pp.size(); kv += pp.size()) want += (kv > 0) + (kv < v * pp.size() - 1);
  for (const auto& [route, c] : link.sent()) got += c.calls;
  EXPECT_EQ(got, want * m * cfg.steps) << ch04::schedule_name(kind);
  for (const nn::Param& p : stage.params().all()) r.final[p.name] = p.value.clone();
  return r;
}

Result serial(Ops& ops, const ModelConfig& cfg) {
  nn::Model model(ops, cfg);
  nn::LocalUpdate update(ops, model.params(), nn::AdamWConfig::from(cfg));
  Result r;
  for (int k = 0; k < cfg.steps; ++k)
    r.losses.push_back(
        nn::train_step(model, update, nn::synthetic_batch(cfg.seed, cfg.vocab, cfg.batch, cfg.seq, k * cfg.batch)));
  for (const nn::Param& p : model.params().all()) r.final[p.name] = p.value.clone();
  return r;
}

void every_schedule_equals_serial(Ops& ops, Communicator& pp, bool moe) {
  const int p = pp.size(), m = 2 * p, v = p == 4 ? 3 : 2;
  ModelConfig cfg = small(moe);
  cfg.batch = 2 * m;
  const Result ref = serial(ops, cfg);
  std::map<std::string, Tensor> first;
  for (ch04::ScheduleKind k : {ch04::ScheduleKind::gpipe, ch04::ScheduleKind::one_f_one_b,
                               ch04::ScheduleKind::interleaved, ch04::ScheduleKind::zb_h1}) {
    const int kv = k == ch04::ScheduleKind::interleaved ? v : 1;
    if (!ch04::check_layout(k, cfg.layers, p, m, kv, cfg.batch).empty()) continue;  // interleaved at p = 1
    SCOPED_TRACE(ch04::schedule_name(k) + (moe ? " MoE" : " dense"));
    const Result got = run(ops, pp, cfg, k, m, kv);
    for (int s = 0; s < cfg.steps; ++s) EXPECT_NEAR(got.losses[s], ref.losses[s], 1e-5 * ref.losses[s]) << "step " << s;
    for (const auto& [name, t] : got.final) {
      EXPECT_LT(rel(t, ref.final.at(name)), 1e-4) << name;
      if (!first.count(name)) first[name] = t;
      else EXPECT_EQ(rel(t, first.at(name)), 0.0) << name << ": schedules differ";  // the same sums, same order
    }
  }
}

TEST_F(PpRunnerTest, EveryScheduleEqualsSerialDense) { every_schedule_equals_serial(ops(), world(), false); }

TEST_F(PpRunnerTest, EveryScheduleEqualsSerialMoeWithDropsAndAuxLoss) {
  every_schedule_equals_serial(ops(), world(), true);
}

TEST_F(PpRunnerTest, UnevenSplitAndOneMicrobatch) {
  ModelConfig cfg = small(false);
  cfg.layers = 5;  // p = 2, 3, 4 do not all divide it: the first stages take the extra layers
  cfg.batch = 4;
  const Result ref = serial(ops(), cfg);
  for (int m : {1, 4}) {
    const Result got = run(ops(), world(), cfg, ch04::ScheduleKind::one_f_one_b, m, 1);
    for (int s = 0; s < cfg.steps; ++s) EXPECT_NEAR(got.losses[s], ref.losses[s], 1e-5 * ref.losses[s]) << "m " << m;
    for (const auto& [name, t] : got.final) EXPECT_LT(rel(t, ref.final.at(name)), 1e-4) << name;
  }
}

TEST_F(PpRunnerTest, GenerationWithRequestsInFlightEqualsSerial) {
  ModelConfig cfg = small(true);
  cfg.layers = 4;
  ch04::PipelineStage stage(ops(), cfg, world().size(), 1, world().rank());
  ch04::StageLink link(world(), ops());
  const Tensor prompts = nn::synthetic_batch(cfg.seed, cfg.vocab, 4, 3, 77).inputs;  // [4, 3]
  nn::Model model(ops(), cfg);
  const Tensor want = model.generate(prompts, 5, true);
  for (int requests : {1, 2, 4}) {
    const Tensor got = ch04::pipelined_generate(stage, link, prompts, requests, 5);
    if (world().rank() == 0) EXPECT_EQ(rel(got, want), 0.0) << requests << " requests";
    else EXPECT_FALSE(got.defined());
  }
}

TEST_F(PpRunnerTest, AMessageOutOfOrderIsCaughtNotHung) {
  if (world().size() < 2) GTEST_SKIP() << "needs two ranks";
  ch04::StageLink link(world(), ops());
  const Tensor x = Tensor::zeros({2, 3});
  if (world().rank() == 0) {
    link.send(x, 1, {'F', 1, 1});  // microbatch 1 first: the receiver expects microbatch 0
    link.wait_all();
  } else if (world().rank() == 1) {
    try {
      link.recv({2, 3}, DType::f32, 0, {'F', 0, 1});
      ADD_FAILURE() << "the wrong message was taken";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("expected the activation of microbatch 0"), std::string::npos) << what;
      EXPECT_NE(what.find("sent the activation of microbatch 1"), std::string::npos) << what;
    }
    Tensor drain = Tensor::empty({2, 3});
    world().recv(drain, 0, 2);  // the payload behind the header, so the sender's send completes
  }
  world().barrier();
}

}  // namespace
}  // namespace fivefold::test
