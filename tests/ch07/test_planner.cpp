// SPDX-License-Identifier: MIT
// Chapter 07's layout planner (planner.hpp), no communication: the parameters a rank holds
// against nn::model_param_specs cut by chapter 04's chunks and chapter 03's splits (exactly); the
// per-group payload bytes against chapters 03, 04 and 05's own formulas; the Llama parameter
// counts; the rules real systems enforce; the bubble and the activations in flight against
// chapter 04; the memory parts and ZeRO's sharding; which traffic crosses nodes.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "chapters/01_reference_model/costs.hpp"
#include "chapters/03_tensor_parallel/tp_costs.hpp"
#include "chapters/03_tensor_parallel/tp_layout.hpp"
#include "chapters/04_pipeline_parallel/pp_runner.hpp"
#include "chapters/04_pipeline_parallel/pp_schedule.hpp"
#include "chapters/05_sequence_parallel/sp_model.hpp"
#include "chapters/07_hybrid_parallel/planner.hpp"
#include "common/check.hpp"
#include "nn/params.hpp"

using namespace fivefold;
using namespace fivefold::ch07;

namespace {

ModelConfig llama(bool big) {
  ModelConfig c;
  c.layers = big ? 80 : 32, c.dim = big ? 8192 : 4096, c.ffn = big ? 28672 : 11008, c.vocab = 32000;
  c.heads = big ? 64 : 32, c.kv_heads = big ? 8 : 32, c.seq = 4096, c.batch = 1024;
  return c;
}

ModelConfig moe_model() {  // GQA, MoE on layers 1 and 3, 4 experts
  ModelConfig c;
  c.layers = 4, c.heads = 8, c.kv_heads = 2, c.experts = 4, c.topk = 2, c.moe_every = 2;
  return c;
}

PlanLayout layout(int tp, int ep, int pp, int v = 1) {
  PlanLayout l;
  l.tp = tp, l.ep = ep, l.pp = pp, l.v = v;
  return l;
}

/// What rank (stage, ep coordinate e, any tp coordinate) holds, read off the parameter list:
/// chapter 04's chunk_holds, chapter 03's shard shapes, experts e*E/ep .. whole.
HeldParams from_specs(const ModelConfig& cfg, const PlanLayout& l, int stage, int e) {
  HeldParams h;
  const auto chunks = ch04::rank_chunks(cfg.layers, l.pp, l.v, stage);
  for (const nn::ParamSpec& spec : nn::model_param_specs(cfg)) {
    if (!ch04::chunk_holds(chunks, cfg.layers, spec.name)) continue;
    const std::size_t at = spec.name.find(".experts.");
    if (at != std::string::npos) {
      const int expert = std::stoi(spec.name.substr(at + 9)), per = cfg.experts / l.ep;
      if (expert / per == e) h.expert += shape_numel(spec.shape);
    } else if (spec.name.find("norm.weight") != std::string::npos || spec.name.find("router") != std::string::npos) {
      h.replicated += shape_numel(spec.shape);
    } else {
      const ch03::Split s = ch03::split_of(spec.name);
      const Shape shard = ch03::shard_shape(spec.shape, s, l.tp);
      EXPECT_EQ(shape_numel(shard) * l.tp, shape_numel(spec.shape)) << spec.name << " does not split evenly";
      h.sharded += shape_numel(shard);
    }
  }
  return h;
}

}  // namespace

TEST(Planner, LlamaParameterCounts) {
  // 7B: 2VC + L (4C^2 + 3FC + 2C) + C = 6,738,415,616 (Llama 2 7B: "6.74B").
  // 70B: 2VC + L (2C^2 + 2C*Hkv*hd + 3FC + 2C) + C = 68,976,648,192 (Llama 2 70B: "68.98B").
  const std::int64_t want[] = {6738415616LL, 68976648192LL};
  for (bool big : {false, true}) {
    const ModelConfig c = llama(big);
    const std::int64_t total = rank_param_elements(c, layout(1, 1, 1), 0).total();
    EXPECT_EQ(total, ch01::param_count(c));
    EXPECT_EQ(total, want[big]);
  }
  EXPECT_NEAR(6738415616.0 / 6.74e9, 1.0, 0.005);
  EXPECT_GE(68976648192.0, 68.98e9 - 1e7);
  EXPECT_LE(68976648192.0, 70.6e9);
}

TEST(Planner, RankParamsEqualTheParameterListCutByChunksAndShards) {
  struct Case {
    ModelConfig cfg;
    PlanLayout l;
  };
  ModelConfig five;  // 5 layers over 2 stages: 3 + 2
  five.layers = 5;
  ModelConfig six;
  six.layers = 6, six.heads = 8, six.kv_heads = 4;
  const Case cases[] = {
      {ModelConfig{}, layout(1, 1, 1)}, {ModelConfig{}, layout(2, 1, 2)}, {five, layout(2, 1, 2)},
      {six, layout(4, 1, 3, 2)},        {moe_model(), layout(1, 2, 2)},   {moe_model(), layout(2, 4, 1)},
      {moe_model(), layout(2, 2, 2, 2)}, {llama(true), layout(8, 1, 8)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.l.describe() + " L " + std::to_string(c.cfg.layers) + " E " + std::to_string(c.cfg.experts));
    std::int64_t sum = 0;
    for (int s = 0; s < c.l.pp; ++s) {
      const HeldParams got = rank_param_elements(c.cfg, c.l, s);
      for (int e = 0; e < c.l.ep; ++e) {
        const HeldParams want = from_specs(c.cfg, c.l, s, e);
        EXPECT_EQ(got.sharded, want.sharded) << "stage " << s;
        EXPECT_EQ(got.replicated, want.replicated) << "stage " << s;
        EXPECT_EQ(got.expert, want.expert) << "stage " << s << ", ep rank " << e;
      }
      // Nothing is held twice once the tp replicas of the norms/routers and the ep copies of the
      // dense part are counted once: the stages' shards add up to the model.
      sum += c.l.tp * got.sharded + got.replicated + c.l.ep * got.expert;
    }
    EXPECT_EQ(sum, ch01::param_count(c.cfg));
  }
}

TEST(Planner, GroupBytesEqualTheChaptersFormulas) {
  // tp alone, one microbatch: chapter 03's forward + backward of the whole model.
  ModelConfig c;  // B 8, T 32, C 64
  const auto tp_only = rank_group_bytes(c, layout(2, 1, 1), 0);
  ASSERT_EQ(tp_only.size(), 1u);
  ch03::CommCost want = ch03::model_forward_cost(c);
  want += ch03::model_backward_cost(c);
  EXPECT_EQ(tp_only[0].group, "tp");
  EXPECT_EQ(tp_only[0].calls, want.calls);
  EXPECT_EQ(tp_only[0].bytes, want.bytes);

  // Microbatches split the bytes, not their sum; stages split the layers; dp sends every gradient.
  PlanLayout l = layout(2, 1, 2);
  l.m = 4, l.dp = 2;
  ModelConfig half = c;
  half.batch = c.batch / l.dp;  // the rows one dp replica trains
  std::int64_t tp_bytes = 0, tp_calls = 0, pp_calls = 0, pp_bytes = 0;
  for (int s = 0; s < l.pp; ++s)
    for (const GroupTraffic& g : rank_group_bytes(c, l, s)) {
      if (g.group == "tp") tp_bytes += g.bytes, tp_calls += g.calls;
      if (g.group == "pp") pp_bytes += g.bytes, pp_calls += g.calls;
      if (g.group == "dp") {
        EXPECT_EQ(g.bytes, 4 * rank_param_elements(c, l, s).total());
      }
    }
  ch03::CommCost whole = ch03::model_forward_cost(half);
  whole += ch03::model_backward_cost(half);
  EXPECT_EQ(tp_bytes, whole.bytes);
  EXPECT_EQ(tp_calls, l.m * whole.calls);
  EXPECT_EQ(pp_calls, ch04::messages_formula(l.pp, l.m, l.v));
  EXPECT_EQ(pp_bytes, pp_calls * (half.batch / l.m) * c.seq * c.dim * 4);

  // Interleaved: chapter 04's message count over both ranks' chunks.
  ModelConfig four = c;
  four.layers = 4;
  PlanLayout il = layout(1, 1, 2, 2);
  il.m = 4;
  std::int64_t calls = 0;
  for (int s = 0; s < il.pp; ++s)
    for (const GroupTraffic& g : rank_group_bytes(four, il, s)) calls += g.group == "pp" ? g.calls : 0;
  EXPECT_EQ(calls, ch04::messages_formula(il.pp, il.m, il.v));

  // sp alone: chapter 05's ring (isend, and the all-reduce of every gradient over sp).
  for (int sp : {2, 4}) {
    PlanLayout r;
    r.sp = sp;
    const auto rows = rank_group_bytes(c, r, 0);
    const auto ch05 = ch05::step_comm(ch05::SpMode::ring, c, sp);
    std::set<std::string> seen;
    for (const GroupTraffic& g : rows) {
      EXPECT_EQ(g.group, "sp");
      seen.insert(g.op);
      EXPECT_EQ(g.calls, ch05.at(g.op).calls) << g.op;
      EXPECT_EQ(g.bytes, ch05.at(g.op).payload_bytes) << g.op;
    }
    EXPECT_EQ(seen, (std::set<std::string>{"isend", "all_reduce"}));
  }

  // ep: the dense gradients over ep, all of them over dp (nn::default_sum_axes).
  PlanLayout e = layout(1, 2, 1);
  e.dp = 2;
  const HeldParams held = rank_param_elements(moe_model(), e, 0);
  for (const GroupTraffic& g : rank_group_bytes(moe_model(), e, 0))
    EXPECT_EQ(g.bytes, 4 * (g.group == "ep" ? held.dense() : held.total())) << g.group;

  // What it does not count is refused, not guessed.
  EXPECT_THROW(rank_group_bytes(moe_model(), layout(2, 1, 1), 0), UsageError);
  PlanLayout z = layout(1, 1, 1);
  z.zero = 1;
  EXPECT_THROW(rank_group_bytes(c, z, 0), UsageError);
}

TEST(Planner, GroupBytesEqualWhatTheHybridRunsCounted) {
  // Per-step counts of `mpirun -np 8 ch07_hybrid_parallel --step 5 --tp 2 --sp 2 --pp 2 --json F`
  // (default model, ring, m 2) and `--step 6 --ep 2 --dp 2 --pp 2` (4 experts, top 2, m 2): the
  // summary's hybrid.<run>.ranks[r].per_step and param_bytes for a rank of each stage.
  struct Want {
    const char* group;
    const char* op;
    std::int64_t calls, bytes;
  };
  auto check = [](const ModelConfig& c, const PlanLayout& l, int stage, std::int64_t param_bytes,
                  const std::vector<Want>& want) {
    SCOPED_TRACE(l.describe() + " stage " + std::to_string(stage));
    EXPECT_EQ(4 * rank_param_elements(c, l, stage).total(), param_bytes);
    const auto rows = rank_group_bytes(c, l, stage);
    ASSERT_EQ(rows.size(), want.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      bool found = false;
      for (const Want& w : want)
        if (rows[i].group == w.group && rows[i].op == w.op) {
          found = true;
          EXPECT_EQ(rows[i].calls, w.calls) << w.group << " " << w.op;
          EXPECT_EQ(rows[i].bytes, w.bytes) << w.group << " " << w.op;
        }
      EXPECT_TRUE(found) << rows[i].group << " " << rows[i].op << " was not counted by the run";
    }
  };
  PlanLayout four_d = layout(2, 1, 2);
  four_d.sp = 2, four_d.m = 2;
  check(ModelConfig{}, four_d, 0, 82432,
        {{"tp", "all_reduce", 10, 163840}, {"sp", "isend", 16, 65536}, {"pp", "isend", 2, 32768},
         {"sp", "all_reduce", 1, 82432}});
  check(ModelConfig{}, four_d, 1, 82688,
        {{"tp", "all_reduce", 16, 165376}, {"sp", "isend", 16, 65536}, {"pp", "isend", 2, 32768},
         {"sp", "all_reduce", 1, 82688}});
  ModelConfig moe;
  moe.experts = 4, moe.capacity_factor = 1.0;
  PlanLayout five_d = layout(1, 2, 2);
  five_d.dp = 2, five_d.m = 2;
  check(moe, five_d, 0, 263680,
        {{"pp", "isend", 2, 16384}, {"dp", "all_reduce", 1, 263680}, {"ep", "all_reduce", 1, 67072}});
  check(moe, five_d, 1, 263936,
        {{"pp", "isend", 2, 16384}, {"dp", "all_reduce", 1, 263936}, {"ep", "all_reduce", 1, 67328}});
}

TEST(Planner, RulesRealSystemsEnforce) {
  PlanCluster cl;  // 8 x 8
  PlanLimits lim;
  lim.max_tp = 64, lim.max_pp = 16, lim.max_v = 2;
  PlanCostModel cost;
  const ModelConfig big = llama(true);
  const PlanResult res = plan_layouts(big, cl, lim, cost);
  ASSERT_FALSE(res.rows.empty());
  EXPECT_GT(res.rejected.at("Hkv % tp"), 0);  // tp 16, 32, 64: more than the 8 kv heads
  for (const PlanRow& r : res.rows) {
    const PlanLayout& l = r.layout;
    EXPECT_LE(l.tp, 8) << l.describe();
    EXPECT_TRUE(l.zero < 2 || l.pp == 1) << l.describe();
    EXPECT_TRUE(l.v == 1 || l.m % l.pp == 0) << l.describe();
    EXPECT_EQ(big.batch % (l.dp * l.ep * l.m), 0) << l.describe();
    EXPECT_EQ(l.world(), cl.gpus());
  }
  // One rule at a time, each named by its key.
  auto rule = [](const ModelConfig& c, const PlanLayout& l) {
    const std::string why = layout_problem(c, l);
    return why.substr(0, why.find(':'));
  };
  PlanLayout l = layout(16, 1, 1);
  EXPECT_EQ(rule(big, l), "Hkv % tp");
  l = layout(1, 1, 2);
  l.zero = 2;
  EXPECT_EQ(rule(big, l), "ZeRO-2/3 with pp");
  l.zero = 3;
  EXPECT_EQ(rule(big, l), "ZeRO-2/3 with pp");
  l.zero = 1;
  EXPECT_EQ(rule(big, l), "");
  l = layout(1, 1, 4, 2);
  l.m = 6;
  EXPECT_EQ(rule(big, l), "m % pp");
  l.m = 8;
  EXPECT_EQ(rule(big, l), "");
  l = layout(1, 1, 1);
  l.sp = 3;
  EXPECT_EQ(rule(big, l), "T % 2sp");
  l = layout(1, 1, 1);
  l.dp = 3;
  EXPECT_EQ(rule(big, l), "B % (dp ep m)");
  EXPECT_EQ(rule(moe_model(), layout(1, 3, 1)), "E % ep");
  EXPECT_EQ(rule(big, layout(1, 2, 1)), "ep without experts");
  EXPECT_EQ(rule(moe_model(), layout(2, 1, 1)), "MoE tp needs SP");
  l = layout(2, 1, 1);
  l.megatron_sp = true;
  EXPECT_EQ(rule(moe_model(), l), "");
  EXPECT_EQ(rule(big, layout(1, 1, 3, 2)), "L % (pp v)");
}

TEST(Planner, BubbleAndActivationsInFlightMatchChapter04) {
  for (int p = 1; p <= 8; ++p)
    for (int m = 1; m <= 16; ++m)
      for (int v = 1; v <= 3; ++v) {
        const ch04::ScheduleKind k = v == 1 ? ch04::ScheduleKind::one_f_one_b : ch04::ScheduleKind::interleaved;
        EXPECT_DOUBLE_EQ(pipeline_bubble(p, m, v), ch04::bubble_formula(k, p, m, v)) << p << " " << m << " " << v;
      }
  // 1F1B stage 0 holds p microbatches of its L/p layers: one microbatch through all L layers;
  // interleaving multiplies that by Megatron's 1 + (p-1)/(p v).
  ModelConfig c;
  c.layers = 24;
  for (int p : {2, 3, 4})
    for (int v : {1, 2})
      for (int m : {2 * p, 4 * p}) {  // enough microbatches for the interleaved warm-up
        PlanLayout l = layout(1, 1, p, v);
        l.m = m;
        const double want = c.layers * (v == 1 ? 1.0 : 1.0 + (p - 1.0) / (p * v));
        EXPECT_DOUBLE_EQ(stage_layer_microbatches(c, l, 0), want) << p << " " << v << " " << m;
        // The last stage: 1F1B holds one microbatch, interleaving its warm-up of (v-1) p + 1 chunks.
        const int last = v == 1 ? c.layers / p : c.layers / (p * v) * ((v - 1) * p + 1);
        EXPECT_DOUBLE_EQ(stage_layer_microbatches(c, l, p - 1), last) << p << " " << v << " " << m;
      }
}

TEST(Planner, ActivationFormulaAndMemoryParts) {
  const ModelConfig c = llama(false);
  PlanCostModel cost;  // bf16-mixed, scores kept
  PlanLayout l = layout(1, 1, 1);
  l.dp = 64, l.m = 16;  // b = 1024 / 64 / 16 = 1 sequence per microbatch
  const double s = 4096, h = 4096, a = 32;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(c, l, cost), s * h * (34 + 5 * a * s / h));
  PlanLayout t = l;
  t.tp = 8, t.dp = 8, t.megatron_sp = true;  // b = 1024 / 8 / 16 = 8
  EXPECT_DOUBLE_EQ(layer_activation_bytes(c, t, cost), 8 * s * h * (34 + 5 * a * s / h) / 8);
  t.megatron_sp = false;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(c, t, cost), 8 * s * h * (10 + 24.0 / 8 + 5 * a * s / (h * 8)));
  PlanCostModel flash32{Precision::fp32, true};
  EXPECT_DOUBLE_EQ(layer_activation_bytes(c, l, flash32), 2 * s * h * 34);

  // The parts add up; ZeRO-k shards exactly the parts it names over the dp*sp*ep replicas.
  const ModelConfig moe = moe_model();
  PlanLayout z = layout(1, 2, 1);
  z.dp = 2, z.sp = 2;
  PlanCostModel fp32{Precision::fp32, false};
  const HeldParams held = rank_param_elements(moe, z, 0);
  std::vector<StageMemory> mem;
  for (int k = 0; k <= 3; ++k) {
    z.zero = k;
    mem.push_back(stage_memory(moe, z, fp32, 0));
    const StageMemory& m = mem.back();
    EXPECT_DOUBLE_EQ(m.total(), m.weights + m.grads + m.optimizer + m.activations);
    EXPECT_DOUBLE_EQ(m.activations, mem[0].activations);
  }
  const double sharded = held.dense() / 8.0 + held.expert / 4.0;  // dense: dp sp ep = 8; experts: dp sp = 4
  EXPECT_DOUBLE_EQ(mem[0].weights + mem[0].grads + mem[0].optimizer, 16.0 * held.total());  // fp32: 4 + 4 + 8
  EXPECT_DOUBLE_EQ(mem[1].optimizer, 8 * sharded);
  EXPECT_DOUBLE_EQ(mem[1].grads, mem[0].grads);
  EXPECT_DOUBLE_EQ(mem[2].grads, 4 * sharded);
  EXPECT_DOUBLE_EQ(mem[2].weights, mem[0].weights);
  EXPECT_DOUBLE_EQ(mem[3].weights, 4 * sharded);
  EXPECT_DOUBLE_EQ(precision_bytes(Precision::bf16_mixed).weight + precision_bytes(Precision::bf16_mixed).grad +
                       precision_bytes(Precision::bf16_mixed).optimizer,
                   16.0);
}

TEST(Planner, TrafficCrossesNodesWhereTheGroupsDo) {
  ModelConfig c;
  PlanCluster cl;
  cl.nodes = 2, cl.gpus_per_node = 2;
  PlanCostModel cost{Precision::fp32, false};
  PlanLayout l = layout(2, 1, 1);
  l.dp = 2;  // tp groups [0,1] [2,3] inside the nodes; dp groups [0,2] [1,3] across
  const StageTraffic inner = stage_traffic(c, l, cl, cost, 0);
  const double grads = 2 * 0.5 * 4.0 * rank_param_elements(c, l, 0).total();  // 2(n-1)/n P, fp32
  EXPECT_DOUBLE_EQ(inner.inter, grads);
  EXPECT_GT(inner.intra, 0);
  PlanLayout swapped = l;
  swapped.order = "dp-tp-sp-ep-pp";  // tp groups [0,2] [1,3]: across; dp groups [0,1] [2,3]: inside
  const StageTraffic outer = stage_traffic(c, swapped, cl, cost, 0);
  EXPECT_DOUBLE_EQ(outer.intra, grads);
  EXPECT_DOUBLE_EQ(outer.inter, inner.intra);
  // tp moves more than dp here, so keeping it inside the node predicts the faster step.
  EXPECT_GT(inner.intra, grads);
  EXPECT_LT(predict(c, l, cl, cost).time_s, predict(c, swapped, cl, cost).time_s);
}
