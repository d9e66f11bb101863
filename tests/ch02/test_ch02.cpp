// SPDX-License-Identifier: MIT
// Chapter 02's library under MPI (run at 1, 2, 3 and 4 ranks): the flat layout (padding,
// shards, a shard drawn from the seed == the slice of the full initialisation), the batch split,
// and DpTrainer for every stage against serial training on the global batch (nn::Model + AdamW):
// losses, step-0 gradients and the parameters after several steps, counted communication == the
// predicted formula, memory == the exact formula, ZeRO-3's ~1/n parameters per rank; and that
// the checks can fail (a wrong weighting of an uneven split is caught); the non-blocking
// iall_gather / ireduce_scatter of the MPI communicator against the blocking ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "backends/backend.hpp"
#include "chapters/02_data_parallel/dp_costs.hpp"
#include "chapters/02_data_parallel/dp_trainer.hpp"
#include "chapters/02_data_parallel/flat_layout.hpp"
#include "nn/adamw.hpp"
#include "nn/model.hpp"
#include "common/summary.hpp"

namespace fivefold::ch02 {
namespace {

Backend& backend() {
  static Backend b = make_backend("cpu");
  return b;
}

ModelConfig tiny(int layers = 2) {
  ModelConfig c;
  c.vocab = 32;
  c.seq = 8;
  c.dim = 32;
  c.heads = 4;
  c.kv_heads = 2;
  c.ffn = 40;  // odd-sized units: padding at n = 3 and 4
  c.layers = layers;
  c.batch = 8;  // 8 = 3 + 3 + 2 at three ranks: an uneven split
  c.steps = 3;
  c.lr = 3e-3;
  c.weight_decay = 0.01;
  return c;
}

/// Relative L2 error ||a - b|| / ||b|| over two host vectors.
double rel_err(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  EXPECT_EQ(x.size(), y.size());
  double d = 0, r = 0;
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    d += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    r += double(y[i]) * y[i];
  }
  return r > 0 ? std::sqrt(d / r) : std::sqrt(d);
}

Tensor dense(nn::ParamRegistry& reg, bool grads) {
  Tensor out = Tensor::empty({reg.numel()});
  std::int64_t at = 0;
  for (const nn::Param& p : reg.all()) {
    out.flat(at, p.value.numel()).copy_from(grads ? p.grad : p.value);
    at += p.value.numel();
  }
  return out;
}

nn::Batch batch_of(const ModelConfig& c, int k, int count, int offset) {
  return nn::synthetic_batch(c.seed, c.vocab, count, c.seq, static_cast<std::int64_t>(k) * c.batch + offset);
}

struct Serial {
  std::vector<double> losses;
  Tensor grads0, final;
};

Serial serial(const ModelConfig& c) {
  Ops& ops = *backend().ops;
  nn::Model m(ops, c);
  nn::AdamW opt(ops, nn::AdamWConfig::from(c), m.params());
  Serial s;
  for (int k = 0; k < c.steps; ++k) {
    const nn::Batch b = batch_of(c, k, c.batch, 0);
    m.zero_grad();
    s.losses.push_back(m.forward(b.inputs, b.targets));
    m.backward();
    if (k == 0) s.grads0 = dense(m.params(), true);
    opt.step();
  }
  s.final = dense(m.params(), false);
  return s;
}

struct DpRun {
  std::vector<double> losses;
  Tensor grads0, final;
  CommCounts counts;
  MemoryBytes memory;
  std::unique_ptr<DpTrainer> trainer;
};

/// Trains @p c with @p dc on every rank; @p uniform_weight replaces b_r/B by 1/n (a bug);
/// @p micro > 1 cuts each rank's sequences into that many microbatches (as even as they go).
DpRun train(const ModelConfig& c, const DpConfig& dc, bool uniform_weight = false, int micro = 1) {
  Backend& b = backend();
  std::unique_ptr<Communicator> comm = b.world->split(0, b.world->rank(), "dp/test");
  const int n = comm->size(), r = comm->rank();
  const BatchSplit split{c.batch, n};
  DpRun run;
  run.trainer = DpTrainer::make(*b.ops, *comm, c, dc);
  for (int k = 0; k < c.steps; ++k) {
    const double w = uniform_weight ? 1.0 / n : split.weight(r);
    const BatchSplit cut{split.count(r), std::min(micro, split.count(r))};
    std::vector<nn::Batch> parts;
    for (int q = 0; q < cut.n; ++q) parts.push_back(batch_of(c, k, cut.count(q), split.offset(r) + cut.offset(q)));
    const double loss = run.trainer->step(parts, w);
    Tensor l = Tensor::from_vector(std::vector<float>{static_cast<float>(split.weight(r) * loss)}, {1});
    {
      Uncounted quiet(*comm);
      comm->all_reduce(l);
    }
    run.losses.push_back(l.to_vector()[0]);
    if (k == 0) run.grads0 = run.trainer->dense_grads();
  }
  run.final = run.trainer->dense_params();
  run.counts = comm->counts();
  run.memory = run.trainer->memory();
  return run;
}

TEST(Communicator, NonBlockingGatherAndReduceScatterMatchTheBlockingOnes) {
  Backend& b = backend();
  std::unique_ptr<Communicator> comm = b.world->split(0, b.world->rank(), "nb");
  const int n = comm->size(), r = comm->rank();
  const std::int64_t s = 5;
  Tensor mine = Tensor::empty({s}), full = Tensor::empty({s * n});
  for (std::int64_t i = 0; i < s; ++i) mine.at<float>(i) = static_cast<float>(100 * r + i);
  for (std::int64_t i = 0; i < s * n; ++i) full.at<float>(i) = static_cast<float>((r + 1) * (i % 7));
  Tensor got_ag = Tensor::zeros({s * n}), want_ag = Tensor::zeros({s * n});
  Tensor got_rs = Tensor::zeros({s}), want_rs = Tensor::zeros({s});
  comm->all_gather(mine, want_ag);
  comm->reduce_scatter(full, want_rs);
  std::unique_ptr<Request> a = comm->iall_gather(mine, got_ag);
  std::unique_ptr<Request> c = comm->ireduce_scatter(full, got_rs);
  while (!a->test()) {
  }
  c->wait();
  EXPECT_EQ(rel_err(got_ag, want_ag), 0.0);
  EXPECT_EQ(rel_err(got_rs, want_rs), 0.0);
  // Counted under their own names, payload as the blocking calls (in: S/n and S).
  ASSERT_TRUE(comm->counts().count("iall_gather") && comm->counts().count("ireduce_scatter"));
  EXPECT_EQ(comm->counts().at("iall_gather").calls, 1);
  EXPECT_EQ(comm->counts().at("iall_gather").payload_bytes, 4 * s);
  EXPECT_EQ(comm->counts().at("ireduce_scatter").payload_bytes, 4 * s * n);
  EXPECT_EQ(comm->counts().at("all_gather").calls, 1);
}

TEST(FlatLayout, SegmentsArePaddedAndShardsTileTheBuffer) {
  const int n = backend().world->size();
  for (const bool per_unit : {false, true}) {
    const FlatLayout L(model_units(tiny()), n, per_unit);
    std::int64_t numel = 0, padded = 0;
    for (const Segment& s : L.segments()) {
      EXPECT_EQ(s.padded % n, 0);
      EXPECT_GE(s.padded, s.numel);
      EXPECT_LT(s.padded - s.numel, n);  // less than one element per rank of padding
      EXPECT_EQ(s.offset, padded);
      EXPECT_EQ(s.shard_offset, padded / n);
      numel += s.numel;
      padded += s.padded;
    }
    EXPECT_EQ(numel, L.numel());
    EXPECT_EQ(padded, L.padded());
    EXPECT_EQ(static_cast<int>(L.segments().size()), per_unit ? L.num_units() : 1);
    std::int64_t psi = 0;
    for (const nn::ParamSpec& p : nn::model_param_specs(tiny())) psi += shape_numel(p.shape);
    EXPECT_EQ(L.numel(), psi);
  }
}

TEST(FlatLayout, ShardFromTheSeedIsTheSliceOfTheFullInit) {
  const int n = backend().world->size();
  for (const bool per_unit : {false, true}) {
    const FlatLayout L(model_units(tiny()), n, per_unit);
    const Tensor full = L.init_full(1234);
    for (int r = 0; r < n; ++r) {
      const Tensor shard = L.init_shard(1234, r);
      for (const Segment& s : L.segments())
        EXPECT_EQ(rel_err(shard.flat(s.shard_offset, s.shard(n)), full.flat(s.offset + r * s.shard(n), s.shard(n))), 0.0);
    }
    // The dense view of the full buffer is the registration-order concatenation of param_init.
    std::int64_t at = 0;
    const Tensor d = L.to_dense(*backend().ops, full);
    for (const nn::ParamSpec& p : nn::model_param_specs(tiny())) {
      EXPECT_EQ(rel_err(d.flat(at, shape_numel(p.shape)), nn::param_init(1234, p.name, p.shape).view({shape_numel(p.shape)})), 0.0)
          << p.name;
      at += shape_numel(p.shape);
    }
  }
}

TEST(BatchSplit, CoversTheBatchOnceWithWeightsSummingToOne) {
  for (int B = 1; B <= 13; ++B) {
    for (int n = 1; n <= B; ++n) {
      const BatchSplit s{B, n};
      int next = 0;
      double w = 0;
      for (int r = 0; r < n; ++r) {
        EXPECT_EQ(s.offset(r), next);
        EXPECT_GE(s.count(r), 1);
        next += s.count(r);
        w += s.weight(r);
      }
      EXPECT_EQ(next, B);
      EXPECT_NEAR(w, 1.0, 1e-12);
    }
  }
}

class EveryStage : public ::testing::TestWithParam<int> {};

TEST_P(EveryStage, EqualsSerialTrainingOnTheGlobalBatch) {
  const ModelConfig c = tiny();
  const Serial ref = serial(c);
  DpConfig dc;
  dc.zero = GetParam() % 10;
  dc.bucket_mb = GetParam() == 10 ? 0.01 : 0.0;  // 10: stage 0 with buckets (overlapped)
  const DpRun run = train(c, dc);
  for (int k = 0; k < c.steps; ++k) EXPECT_NEAR(run.losses[k], ref.losses[k], 1e-5 * ref.losses[k]) << "step " << k;
  EXPECT_LE(rel_err(run.grads0, ref.grads0), 1e-5);
  EXPECT_LE(rel_err(run.final, ref.final), 1e-4);
  // Counted communication == the predicted formula; memory == the exact formula.
  const int buckets = static_cast<int>(run.trainer->buckets().size());
  if (GetParam() == 10) {
    EXPECT_GE(buckets, 2);
  }
  const auto pred = predicted_comm(dc, run.trainer->layout(), buckets,
                                   static_cast<int>(nn::model_param_specs(c).size()), c.steps);
  std::int64_t predicted_ops = 0;
  for (const OpPrediction& p : pred) {
    ASSERT_TRUE(run.counts.count(p.op)) << p.op;
    EXPECT_EQ(run.counts.at(p.op).calls, p.calls) << p.op;
    EXPECT_EQ(run.counts.at(p.op).payload_bytes, p.payload_bytes) << p.op;
    ++predicted_ops;
  }
  EXPECT_EQ(static_cast<std::int64_t>(run.counts.size()), predicted_ops) << "an op nobody predicted was counted";
  const MemoryBytes want = exact_memory(dc, run.trainer->layout());
  EXPECT_EQ(run.memory.params, want.params);
  EXPECT_EQ(run.memory.grads, want.grads);
  EXPECT_EQ(run.memory.optimizer, want.optimizer);
  EXPECT_EQ(run.memory.buffers, want.buffers);
}

INSTANTIATE_TEST_SUITE_P(Stages, EveryStage, ::testing::Values(0, 10, 1, 2, 3));

TEST(Stages, BlockingVariantsGiveTheSameNumbers) {
  const ModelConfig c = tiny(3);
  for (int zero : {2, 3}) {
    DpConfig dc;
    dc.zero = zero;
    const DpRun overlapped = train(c, dc);
    dc.overlap = false;
    dc.prefetch = false;
    const DpRun blocking = train(c, dc);
    // Not bitwise: MPI's non-blocking reduce-scatter may sum the ranks in another order.
    EXPECT_LE(rel_err(overlapped.final, blocking.final), 1e-6) << "ZeRO-" << zero;
    EXPECT_FALSE(blocking.counts.count("ireduce_scatter") || blocking.counts.count("iall_gather"));
  }
}

TEST(Stages, AgreeWithEachOther) {
  const ModelConfig c = tiny();
  DpConfig dc;
  const DpRun base = train(c, dc);
  for (int zero = 1; zero <= 3; ++zero) {
    dc.zero = zero;
    EXPECT_LE(rel_err(train(c, dc).final, base.final), 1e-5) << "ZeRO-" << zero << " vs DDP";
  }
  dc.prefetch = false;  // ZeRO-3 with one workspace: the same numbers
  EXPECT_LE(rel_err(train(c, dc).final, base.final), 1e-5);
}

TEST(Stages, MicrobatchesAccumulateToTheSameStep) {
  const ModelConfig c = tiny();
  const Serial ref = serial(c);
  for (const double bucket_mb : {0.0, 0.01}) {
    for (int zero : {0, 1}) {
      DpConfig dc;
      dc.zero = zero;
      dc.bucket_mb = zero == 0 ? bucket_mb : 0.0;
      const DpRun one = train(c, dc), three = train(c, dc, false, 3);
      EXPECT_LE(rel_err(three.grads0, ref.grads0), 1e-5) << "ZeRO-" << zero;
      EXPECT_LE(rel_err(three.final, ref.final), 1e-4) << "ZeRO-" << zero;
      // The gradients are synchronised once per step, in the last microbatch's backward.
      for (const auto& [op, count] : one.counts) {
        ASSERT_TRUE(three.counts.count(op)) << op;
        EXPECT_EQ(three.counts.at(op).calls, count.calls) << op << " ZeRO-" << zero;
      }
    }
  }
  DpConfig z2;
  z2.zero = 2;
  if (c.batch / backend().world->size() >= 2) {  // every rank has two sequences to cut
    EXPECT_THROW(train(c, z2, false, 2), UsageError);
  }
}

TEST(Zero3, HoldsAboutOneNthOfTheParameters) {
  const int n = backend().world->size();
  const ModelConfig c = tiny(8);
  DpConfig dc;
  dc.zero = 3;
  const DpRun run = train(c, dc);
  const std::int64_t full = 4 * run.trainer->layout().numel();
  // The stored shard: Ψ/n, plus less than one element per unit of padding.
  EXPECT_LE(run.memory.params, full / n + 4 * run.trainer->layout().num_units());
  EXPECT_GE(run.memory.params, full / n);
  // With the two gather workspaces, still less than a replica once there are a few layers.
  if (n >= 2) {
    EXPECT_LT(run.memory.params + 2 * 4 * run.trainer->layout().max_padded(), full);
  }
}

TEST(Checks, CatchAWronglyWeightedUnevenSplit) {
  const int n = backend().world->size();
  const ModelConfig c = tiny();
  if (c.batch % n == 0) GTEST_SKIP() << "B = " << c.batch << " divides by n = " << n << ": 1/n is the right weight";
  const Serial ref = serial(c);
  DpConfig dc;
  const DpRun wrong = train(c, dc, /*uniform_weight=*/true);
  EXPECT_GT(rel_err(wrong.grads0, ref.grads0), 1e-3) << "weighting b_r/B vs 1/n must make a visible difference";
}

}  // namespace
}  // namespace fivefold::ch02
