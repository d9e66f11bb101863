// SPDX-License-Identifier: MIT
// Chapter 05's model at the world size this runs on (np 1, 2, 3, 4 = sp): every mode the layout
// allows trains a dense and a GQA model several AdamW steps equal to serial training (losses,
// final parameters), the modes equal one another, counted communication equals each mode's
// formula, and zigzag's attention work is the same on every rank.
#include <gtest/gtest.h>

#include <map>

#include "backends/backend.hpp"
#include "chapters/03_tensor_parallel/tp_gather.hpp"
#include "chapters/05_sequence_parallel/sp_model.hpp"
#include "chapters/05_sequence_parallel/ulysses.hpp"
#include "common/check.hpp"
#include "common/summary.hpp"
#include "nn/model.hpp"

namespace fivefold::test {
namespace {

using ch05::SpMode;

class SpModelTest : public ::testing::Test {
 protected:
  void SetUp() override { backend_ = make_backend("cpu"); }
  Ops& ops() { return *backend_.ops; }
  Communicator& world() { return *backend_.world; }
  Backend backend_;
};

/// A small model: T = 24 splits over 1, 2, 3, 4 ranks and into 2 sp chunks for sp = 1, 2, 3
/// (zigzag at 4 needs 8 | T: the test uses T = 48 there).
ModelConfig small(int kv_heads, int sp) {
  ModelConfig c;
  c.layers = 2;
  c.dim = 48;
  c.heads = 12;  // divisible by 1, 2, 3, 4
  c.kv_heads = kv_heads;
  c.ffn = 48;
  c.vocab = 48;
  c.seq = sp == 4 ? 48 : 24;
  c.batch = 2;
  c.steps = 3;
  return c;
}

struct Result {
  std::vector<double> losses;
  std::map<std::string, Tensor> final;  // full parameters (the serial run's)
};

nn::Batch batch_of(const ModelConfig& cfg, int k) {
  return nn::stream_batch(cfg, k);
}

Result serial(Ops& ops, const ModelConfig& cfg) {
  nn::Model model(ops, cfg);
  nn::LocalUpdate update(ops, model.params(), nn::AdamWConfig::from(cfg));
  Result r;
  for (int k = 0; k < cfg.steps; ++k) r.losses.push_back(nn::train_step(model, update, batch_of(cfg, k)));
  for (const nn::Param& p : model.params().all()) r.final[p.name] = p.value.clone();
  return r;
}

double rel(const Tensor& a, const Tensor& b) { return compare("", a, b, 0.0).max_rel_err; }

/// This rank's block of the full parameter @p full (its shard under megatron).
Tensor mine(const nn::Param& p, const Tensor& full, SpMode mode, int rank, int sp) {
  if (mode != SpMode::megatron) return full.to(Device::host);
  return ch03::block_of(full, ch03::split_of(p.name), rank, sp);
}

/// Trains @p mode, checks it against @p ref, returns its losses.
std::vector<double> train_and_check(Ops& ops, Communicator& sp, const ModelConfig& cfg, SpMode mode, const Result& ref) {
  const std::string name = ch05::sp_mode_name(mode);
  ch05::SpModel model(ops, sp, cfg, mode);
  auto update = model.make_update(nn::AdamWConfig::from(cfg));
  sp.reset_counts();
  std::vector<double> losses;
  for (int k = 0; k < cfg.steps; ++k) losses.push_back(model.step(*update, batch_of(cfg, k)));
  for (int k = 0; k < cfg.steps; ++k)
    EXPECT_LT(std::abs(losses[k] - ref.losses[k]), 1e-5 * std::abs(ref.losses[k])) << name << " step " << k;
  for (const nn::Param& p : model.params().all())
    EXPECT_LT(rel(p.value.to(Device::host), mine(p, ref.final.at(p.name), mode, sp.rank(), sp.size())), 1e-4)
        << name << " " << p.name;

  // Counted communication per mode against its formula (payload bytes this rank handed over).
  const int n = sp.size();
  const std::int64_t B = cfg.batch, T = cfg.seq, C = cfg.dim, L = cfg.layers, steps = cfg.steps;
  const auto counted = [&](const std::string& op) {
    const auto it = sp.counts().find(op);
    return it == sp.counts().end() ? OpCount{} : it->second;
  };
  if (n == 1) return losses;
  std::int64_t grad_bytes = 0;
  for (const nn::Param& p : model.params().all())
    if (p.sum_axes & (mode == SpMode::megatron ? nn::kSumTp : nn::kSumSp)) grad_bytes += p.grad.numel() * 4;
  // The gradient sum; under megatron also the vocab-parallel loss's 3 all-reduces of B*T floats.
  const std::int64_t loss_calls = mode == SpMode::megatron ? 3 : 0, loss_bytes = loss_calls * B * T * 4;
  EXPECT_EQ(counted("all_reduce").payload_bytes, steps * (grad_bytes + loss_bytes)) << name;
  EXPECT_EQ(counted("all_reduce").calls, steps * (1 + loss_calls)) << name;
  for (const auto& [op, want] : ch05::step_comm(mode, cfg, n)) {  // the library's formula agrees
    EXPECT_EQ(counted(op).calls, steps * want.calls) << name << " " << op;
    EXPECT_EQ(counted(op).payload_bytes, steps * want.payload_bytes) << name << " " << op;
  }
  switch (mode) {
    case SpMode::megatron: {
      // Per block (2 per layer): forward AG + RS, backward AG + RS; embedding RS + AG; head AG + RS.
      const std::int64_t ag = (4 * L + 2) * B * (T / n) * C * 4, rs = (4 * L + 2) * B * T * C * 4;
      EXPECT_EQ(counted("all_gather").payload_bytes, steps * ag) << name;
      EXPECT_EQ(counted("reduce_scatter").payload_bytes, steps * rs) << name;
      EXPECT_EQ(counted("all_gather").calls, steps * (4 * L + 2)) << name;
      break;
    }
    case SpMode::ulysses:
      EXPECT_EQ(counted("all_to_all").payload_bytes, steps * L * 2 * ch05::UlyssesAttention::bytes_per_layer(cfg, n, B, T))
          << name;
      EXPECT_EQ(counted("all_to_all").calls, steps * L * 8) << name;
      break;
    case SpMode::ring:
    case SpMode::zigzag:
      EXPECT_EQ(counted("isend").payload_bytes,
                steps * L * (ch05::RingAttention::forward_bytes(cfg, n, B, T) + ch05::RingAttention::backward_bytes(cfg, n, B, T)))
          << name;
      EXPECT_EQ(counted("irecv").payload_bytes, counted("isend").payload_bytes) << name;
      break;
  }
  if (mode == SpMode::ring || mode == SpMode::zigzag) {
    const auto [pairs, scores] = ch05::RingAttention::expected_work(mode, T, n, sp.rank());
    EXPECT_EQ(model.ring_work().pairs, steps * L * pairs) << name;
    EXPECT_EQ(model.ring_work().scores, steps * L * scores) << name;
  }
  return losses;
}

void all_modes(Ops& ops, Communicator& world, int kv_heads) {
  const ModelConfig cfg = small(kv_heads, world.size());
  const Result ref = serial(ops, cfg);
  std::map<std::string, std::vector<double>> losses;
  for (SpMode mode : ch05::all_sp_modes()) {
    if (!ch05::check_layout(mode, cfg, world.size()).empty()) continue;
    losses[ch05::sp_mode_name(mode)] = train_and_check(ops, world, cfg, mode, ref);
  }
  EXPECT_TRUE(losses.count("ring") && losses.count("zigzag")) << "ring and zigzag run at every size";
  for (const auto& [name, l] : losses)  // the modes equal one another
    for (int k = 0; k < cfg.steps; ++k)
      EXPECT_LT(std::abs(l[k] - losses.begin()->second[k]), 1e-5 * std::abs(l[k])) << name << " step " << k;
}

TEST_F(SpModelTest, EveryModeEqualsSerialDense) { all_modes(ops(), world(), 12); }

TEST_F(SpModelTest, EveryModeEqualsSerialGqa) {
  // 2 kv heads: at sp 4 Ulysses sends each kv head to 2 ranks and sums their dK/dV; at sp 3
  // Ulysses is refused (neither 2 % 3 nor 3 % 2), the others run.
  all_modes(ops(), world(), 2);
}

TEST_F(SpModelTest, ZigzagWorkIsEqualOnEveryRank) {
  const int n = world().size();
  for (std::int64_t T : {8 * 6, 8 * 12}) {
    std::int64_t first = -1;
    for (int r = 0; r < n; ++r) {
      const auto [pairs, scores] = ch05::RingAttention::expected_work(SpMode::zigzag, T, n, r);
      EXPECT_EQ(pairs, 2 * n + 1);
      if (first < 0) first = scores;
      EXPECT_EQ(scores, first) << "rank " << r;
      const auto [rp, rs] = ch05::RingAttention::expected_work(SpMode::ring, T, n, r);
      EXPECT_EQ(rp, r + 1) << "contiguous ring: rank r computes r + 1 blocks";
      (void)rs;
    }
  }
}

TEST_F(SpModelTest, BadLayoutsAreRefusedWithOneLine) {
  ModelConfig c = small(2, 4);
  c.seq = 20;
  EXPECT_NE(ch05::check_layout(SpMode::zigzag, c, 4).find("--seq 20 cannot be split"), std::string::npos);
  EXPECT_NE(ch05::check_layout(SpMode::ring, c, 3).find("multiple of 3"), std::string::npos);
  c.seq = 24;
  EXPECT_NE(ch05::check_layout(SpMode::ulysses, c, 3).find("--kv-heads 2"), std::string::npos);
  c.experts = 4;
  EXPECT_NE(ch05::check_layout(SpMode::ring, c, 2).find("--experts 4"), std::string::npos);
  EXPECT_THROW(ch05::parse_sp_mode("striped"), UsageError);
}

}  // namespace
}  // namespace fivefold::test
