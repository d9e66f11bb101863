// SPDX-License-Identifier: MIT
// The layout planner (planner.hpp): the rules, the exact per-rank counts, the cost model and the
// enumeration.
#include "chapters/07_hybrid_parallel/planner.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <tuple>

#include "chapters/01_reference_model/costs.hpp"
#include "chapters/04_pipeline_parallel/pp_schedule.hpp"
#include "common/check.hpp"

namespace fivefold::ch07 {

namespace {

/// What pipeline rank @p stage holds, counted over its chunks.
struct StageLayers {
  int dense = 0;      // dense layers
  int moe = 0;        // MoE layers
  bool first = false;  // holds layer 0: the embedding
  bool last = false;   // holds layer L-1: final norm, head, loss
  int fwd_sends = 0;  // chunks that send activations on (all but the model's last virtual stage)
  int bwd_sends = 0;  // chunks that send gradients back (all but virtual stage 0)
  int layers() const { return dense + moe; }
};

StageLayers stage_layers(const ModelConfig& cfg, const PlanLayout& l, int stage) {
  FIVEFOLD_CHECK(stage >= 0 && stage < l.pp, "stage ", stage, " is not a stage of pp ", l.pp, "; pass 0..", l.pp - 1);
  FIVEFOLD_USAGE_CHECK(l.v >= 1 && l.pp * l.v <= cfg.layers, "pp ", l.pp, " x v ", l.v, " chunks for ", cfg.layers,
                       " layers; use pp*v <= L");
  StageLayers s;
  const auto chunks = ch04::rank_chunks(cfg.layers, l.pp, l.v, stage);  // TUTORIAL: chapter 04's split
  for (int c = 0; c < l.v; ++c) {
    const auto [first, last] = chunks[c];
    for (int i = first; i < last; ++i) (cfg.is_moe_layer(i) ? s.moe : s.dense) += 1;
    s.first = s.first || first == 0;
    s.last = s.last || last == cfg.layers;
    const int vstage = c * l.pp + stage;
    s.fwd_sends += vstage != l.v * l.pp - 1 ? 1 : 0;
    s.bwd_sends += vstage != 0 ? 1 : 0;
  }
  return s;
}

/// Whether each axis's traffic crosses nodes (see stage_traffic()).
struct Spans {
  bool tp = false, sp = false, ep = false, dense_grads = false, expert_grads = false;
  std::vector<bool> pp_fwd, pp_bwd;  // per stage: a forward (backward) neighbour on another node
};

bool any_group_spans(const ProcessGrid& g, const AxisSet& s, int G) {
  for (const auto& members : g.groups(s))  // members in increasing rank: first and last decide
    if (members.front() / G != members.back() / G) return true;
  return false;
}

Spans spans_of(const PlanLayout& l, int G) {
  const ProcessGrid g({l.tp, l.sp, l.ep, l.dp, l.pp}, l.order, l.world());
  Spans sp;
  sp.tp = any_group_spans(g, AxisSet{Axis::tp}, G);
  sp.sp = any_group_spans(g, AxisSet{Axis::sp}, G);
  sp.ep = any_group_spans(g, AxisSet{Axis::ep}, G);
  sp.dense_grads = any_group_spans(g, AxisSet{Axis::sp, Axis::ep, Axis::dp}, G);
  sp.expert_grads = any_group_spans(g, AxisSet{Axis::sp, Axis::dp}, G);
  sp.pp_fwd.assign(l.pp, false);
  sp.pp_bwd.assign(l.pp, false);
  const int pp = static_cast<int>(Axis::pp);
  for (int r = 0; r < g.world_size(); ++r) {
    AxisArray c = g.coords(r);
    const int s = c[pp];
    c[pp] = (s + 1) % l.pp;  // interleaving wraps from the last rank to the first
    if (g.rank_of(c) / G != r / G) sp.pp_fwd[s] = true;
    c[pp] = (s + l.pp - 1) % l.pp;
    if (g.rank_of(c) / G != r / G) sp.pp_bwd[s] = true;
  }
  return sp;
}

StageTraffic traffic_of(const ModelConfig& cfg, const PlanLayout& l, const PlanCostModel& cost, const Spans& spans,
                        int stage) {
  const PrecisionBytes pb = precision_bytes(cost.precision);
  const StageLayers sl = stage_layers(cfg, l, stage);
  const HeldParams held = rank_param_elements(cfg, l, stage);
  const double C = cfg.dim, a = pb.activation, tp = l.tp, sp = l.sp, ep = l.ep;
  const double N = 1.0 * cfg.batch / (l.dp * l.ep) * cfg.seq / l.sp;  // tokens per rank per step
  StageTraffic t;
  auto add = [&](bool inter, double bytes) { (inter ? t.inter : t.intra) += bytes; };
  if (l.tp > 1) {  // all-reduce-sized exchanges of [N, C] (AG + RS under Megatron-SP: the same bytes)
    const double exchanges = 4.0 * sl.dense + (l.megatron_sp ? 2.0 : 4.0) * sl.moe + sl.first + sl.last;
    add(spans.tp, 2 * (tp - 1) / tp * (exchanges * N * C * a + (sl.last ? 3 * N * 4 : 0)));
  }
  if (l.sp > 1)  // ring attention: (6 sp - 4) blocks of [N, Hkv/tp, hd] per layer
    add(spans.sp, sl.layers() * (6 * sp - 4) * N * (cfg.kv_heads / tp) * cfg.head_dim() * a);
  if (l.ep > 1)  // dispatch + combine, forward + backward, k copies, (ep-1)/ep leave the rank
    add(spans.ep, 4.0 * sl.moe * (ep - 1) / ep * cfg.topk * (l.megatron_sp ? N / tp : N) * C * a);
  auto grads = [&](double P, int n) {
    const double r = (n - 1.0) / n;
    if (l.zero == 0) return 2 * r * P * pb.grad;                    // all-reduce
    return r * P * (pb.grad + (l.zero == 3 ? 2 : 1) * pb.weight);  // reduce-scatter + all-gather(s)
  };
  add(spans.dense_grads, grads(static_cast<double>(held.dense()), l.dp * l.sp * l.ep));
  add(spans.expert_grads, grads(static_cast<double>(held.expert), l.dp * l.sp));
  if (l.pp > 1) {  // one [N, C] (/tp under Megatron-SP) per chunk each way, summed over microbatches
    const double msg = N * C * a / (l.megatron_sp ? tp : 1);
    add(spans.pp_fwd[stage], sl.fwd_sends * msg);
    add(spans.pp_bwd[stage], sl.bwd_sends * msg);
  }
  return t;
}

template <typename... Parts>
std::string problem(const char* rule, const Parts&... parts) {
  return std::string(rule) + ": " + detail::concat(parts...);
}

std::vector<int> divisors(int n) {
  std::vector<int> d;
  for (int i = 1; i <= n; ++i)
    if (n % i == 0) d.push_back(i);
  return d;
}

}  // namespace

PrecisionBytes precision_bytes(Precision p) {
  if (p == Precision::bf16_mixed) return {2, 2, 12, 2};
  return {4, 4, 8, 4};
}

const char* precision_name(Precision p) { return p == Precision::bf16_mixed ? "bf16-mixed" : "fp32"; }

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16-mixed") return Precision::bf16_mixed;
  throw UsageError("--precision " + name + " is not a precision; use fp32 or bf16-mixed");
}

std::string PlanLayout::describe() const {
  std::ostringstream os;
  os << "tp " << tp << " sp " << sp << " ep " << ep << " dp " << dp << " pp " << pp << " zero " << zero << " m " << m
     << " v " << v << " " << order;
  return os.str();
}

std::string layout_problem(const ModelConfig& cfg, const PlanLayout& l, const PlanLimits& lim) {
  if (std::min({l.tp, l.sp, l.ep, l.dp, l.pp, l.m, l.v}) < 1)
    return problem("degrees", l.describe(), ": every degree, m and v must be >= 1");
  if (l.zero < 0 || l.zero > 3) return problem("zero", "zero ", l.zero, " is not a ZeRO stage; use 0, 1, 2 or 3");
  const std::pair<const char*, int> tp_dims[] = {
      {"H % tp", cfg.heads}, {"Hkv % tp", cfg.kv_heads}, {"F % tp", cfg.ffn}, {"V % tp", cfg.vocab}};
  const char* opt[] = {"--heads", "--kv-heads", "--ffn", "--vocab"};
  for (int i = 0; i < 4; ++i)  // TUTORIAL: whole heads, whole kv heads, equal F and vocabulary slices
    if (tp_dims[i].second % l.tp != 0)
      return problem(tp_dims[i].first, "tp ", l.tp, " does not divide ", opt[i], " ", tp_dims[i].second,
                     "; use a tp that divides it");
  const int chunks = lim.zigzag ? 2 * l.sp : l.sp;
  if (l.sp > 1 && cfg.seq % chunks != 0)
    return problem(lim.zigzag ? "T % 2sp" : "T % sp", "sp ", l.sp, " cannot split --seq ", cfg.seq, " into ", chunks,
                   lim.zigzag ? " zigzag chunks" : " blocks", "; use an sp with T % ", lim.zigzag ? "2sp" : "sp",
                   " == 0");
  if (l.ep > 1 && cfg.experts == 0)
    return problem("ep without experts", "ep ", l.ep, " with a dense model; pass --experts E or use ep 1");
  if (cfg.experts > 0 && cfg.experts % l.ep != 0)
    return problem("E % ep", "ep ", l.ep, " does not divide --experts ", cfg.experts, "; use an ep that divides it");
  if (l.zero >= 2 && l.pp > 1)
    return problem("ZeRO-2/3 with pp", "zero ", l.zero, " with pp ", l.pp, ": sharded gradients (or weights) "
                   "would be reduced (or gathered) every microbatch, so DeepSpeed refuses them with pipeline "
                   "parallelism; use zero 0 or 1, or pp 1");
  if (l.pp * l.v > cfg.layers)
    return problem("pp v <= L", "pp ", l.pp, " x v ", l.v, " chunks for ", cfg.layers, " layers; use pp*v <= L");
  if (l.v > 1 && l.pp == 1) return problem("v needs pp", "v ", l.v, " with pp 1: interleaving needs pp > 1; use v 1");
  if (l.v > 1 && cfg.layers % (l.pp * l.v) != 0)
    return problem("L % (pp v)", "v ", l.v, ": --layers ", cfg.layers, " do not split into pp ", l.pp, " x v ", l.v,
                   " equal chunks (Megatron); use a v with L % (pp v) == 0");
  if (l.v > 1 && l.m % l.pp != 0)
    return problem("m % pp", "v ", l.v, " with m ", l.m, " and pp ", l.pp, ": interleaving needs m % pp == 0; use m "
                   "a multiple of ", l.pp);
  if (cfg.batch % (l.dp * l.ep * l.m) != 0)
    return problem("B % (dp ep m)", "--batch ", cfg.batch, " does not split into dp ", l.dp, " x ep ", l.ep, " x m ",
                   l.m, " microbatches of whole sequences; use a B divisible by ", l.dp * l.ep * l.m);
  if (cfg.experts > 0 && l.tp > 1 && !l.megatron_sp)
    return problem("MoE tp needs SP", "tp ", l.tp, " with MoE layers needs Megatron sequence parallelism "
                   "(Megatron-LM); turn it on or use tp 1");
  if (l.megatron_sp && (cfg.seq / l.sp) % l.tp != 0)
    return problem("(T/sp) % tp", "Megatron-SP splits T/sp = ", cfg.seq / l.sp, " positions over tp ", l.tp,
                   "; use a tp that divides T/sp");
  return "";
}

HeldParams rank_param_elements(const ModelConfig& cfg, const PlanLayout& l, int stage) {
  const std::int64_t V = cfg.vocab, C = cfg.dim, F = cfg.ffn, E = cfg.experts, hd = cfg.head_dim(), tp = l.tp;
  const std::pair<int, const char*> split[] = {
      {cfg.heads, "--heads"}, {cfg.kv_heads, "--kv-heads"}, {cfg.ffn, "--ffn"}, {cfg.vocab, "--vocab"}};
  for (const auto& [n, what] : split)
    FIVEFOLD_USAGE_CHECK(n % l.tp == 0, "tp ", l.tp, " does not divide ", what, " ", n, "; use a tp that divides it");
  FIVEFOLD_USAGE_CHECK(E == 0 ? l.ep == 1 : E % l.ep == 0, "ep ", l.ep, " does not divide --experts ", E,
                       "; use an ep that divides it");
  const StageLayers s = stage_layers(cfg, l, stage);
  HeldParams h;
  // TUTORIAL: q and o hold H/tp heads of hd rows (columns), k and v Hkv/tp heads; gate/up rows and
  // down columns F/tp. The norms and routers are whole; experts whole, E/ep of them.
  const std::int64_t attention = (2 * (cfg.heads / tp) + 2 * (cfg.kv_heads / tp)) * hd * C;
  h.sharded = s.layers() * attention + s.dense * 3 * (F / tp) * C;
  h.replicated = s.layers() * 2 * C + s.moe * E * C;
  h.expert = s.moe * (E == 0 ? 0 : E / l.ep) * 3 * F * C;
  if (s.first) h.sharded += (V / tp) * C;  // embed_tokens: V/tp vocabulary rows
  if (s.last) {
    h.sharded += (V / tp) * C;  // lm_head
    h.replicated += C;          // the final norm
  }
  return h;
}

std::vector<GroupTraffic> rank_group_bytes(const ModelConfig& cfg, const PlanLayout& l, int stage) {
  FIVEFOLD_USAGE_CHECK(l.zero == 0, "zero ", l.zero, ": our runs' traffic is counted for ZeRO 0 (nn::SummedUpdate); "
                       "use zero 0");
  FIVEFOLD_USAGE_CHECK(!l.megatron_sp || l.tp == 1, "Megatron-SP's all-gathers and reduce-scatters are not counted "
                       "here (chapter 05 counts them); use megatron_sp false");
  FIVEFOLD_USAGE_CHECK(l.sp >= 1 && cfg.seq % l.sp == 0 && l.m >= 1 && cfg.batch % (l.dp * l.ep * l.m) == 0,
                       "--batch ", cfg.batch, " and --seq ", cfg.seq, " must split into dp x ep x m = ",
                       l.dp * l.ep * l.m, " microbatches and sp ", l.sp, " blocks; fix the layout");
  const StageLayers s = stage_layers(cfg, l, stage);
  FIVEFOLD_USAGE_CHECK(l.tp == 1 || s.moe == 0, "tp ", l.tp, " on a stage with MoE layers: their traffic needs "
                       "Megatron-SP and is not counted here; use tp 1 or a dense model");
  const std::int64_t C = cfg.dim, m = l.m, bm = cfg.batch / (l.dp * l.ep * l.m), Tl = cfg.seq / l.sp;
  const std::int64_t n = bm * Tl, L_s = s.layers();  // tokens per microbatch, layers of the stage
  std::vector<GroupTraffic> rows;
  if (l.tp > 1) {  // TUTORIAL: chapter 03's all-reduces, once per microbatch
    const std::int64_t calls = 4 * L_s + (s.first ? 1 : 0) + (s.last ? 4 : 0);
    const std::int64_t elems = 4 * L_s * n * C + (s.first ? n * C : 0) + (s.last ? n * C + 3 * n : 0);
    rows.push_back({"tp", "all_reduce", m * calls, m * 4 * elems,
                    "m x 4 B x (4 L_s n C + [first] n C + [last] (n C + 3 n))"});
  }
  if (l.sp > 1) {  // chapter 05's ring: a block is [b/m, T/sp, Hkv/tp, hd]
    const std::int64_t block = n * (cfg.kv_heads / l.tp) * cfg.head_dim() * 4, hops = 6 * l.sp - 4;
    rows.push_back({"sp", "isend", m * L_s * hops, m * L_s * hops * block,
                    "m x L_s x (2(sp-1) + 4sp-2) x 4 B x n (Hkv/tp) hd"});
  }
  if (l.pp > 1) {  // chapter 04: one [b/m, T/sp, C] per microbatch and chunk boundary
    const std::int64_t calls = m * (s.fwd_sends + s.bwd_sends);
    rows.push_back({"pp", "isend", calls, calls * n * C * 4, "m x (chunks sending fwd + bwd) x 4 B x n C"});
  }
  const HeldParams held = rank_param_elements(cfg, l, stage);
  if (l.dp > 1) rows.push_back({"dp", "all_reduce", 1, 4 * held.total(), "4 B x every parameter the rank holds"});
  if (l.sp > 1) rows.push_back({"sp", "all_reduce", 1, 4 * held.total(), "4 B x every parameter the rank holds"});
  if (l.ep > 1) rows.push_back({"ep", "all_reduce", 1, 4 * held.dense(), "4 B x its dense (non-expert) parameters"});
  return rows;
}

double pipeline_bubble(int p, int m, int v) { return p <= 1 ? 0.0 : (p - 1.0) / (1.0 * v * m + p - 1.0); }

double layer_activation_bytes(const ModelConfig& cfg, const PlanLayout& l, const PlanCostModel& cost) {
  const double s = 1.0 * cfg.seq / l.sp, b = 1.0 * cfg.batch / (l.dp * l.ep * l.m), h = cfg.dim, a = cfg.heads,
               t = l.tp;
  const double scores = cost.flash_attention ? 0.0 : 5 * a * s / h;  // the T x T softmax, its input and mask
  // TUTORIAL: Korthikanti et al. 2022, eq. (2)/(4): 34 sbh with everything split by tp (SP),
  // else 10 sbh replicated (norms, residuals, dropout) + 24 sbh / tp.
  const double per = (l.megatron_sp || l.tp == 1) ? (34 + scores) / t : 10 + 24 / t + scores / t;
  return s * b * h * per * (cost.precision == Precision::fp32 ? 2 : 1);
}

double stage_layer_microbatches(const ModelConfig& cfg, const PlanLayout& l, int stage) {
  if (l.v == 1)  // 1F1B: min(p - stage, m) microbatches in flight, each through the stage's layers
    return 1.0 * ch04::peak_passes_formula(ch04::ScheduleKind::one_f_one_b, l.pp, l.m, 1, stage) *
           stage_layers(cfg, l, stage).layers();
  return 1.0 * ch04::peak_passes_formula(ch04::ScheduleKind::interleaved, l.pp, l.m, l.v, stage) * cfg.layers /
         (l.v * l.pp);
}

StageMemory stage_memory(const ModelConfig& cfg, const PlanLayout& l, const PlanCostModel& cost, int stage) {
  const PrecisionBytes pb = precision_bytes(cost.precision);
  const HeldParams h = rank_param_elements(cfg, l, stage);
  const double dense_replicas = 1.0 * l.dp * l.sp * l.ep, expert_replicas = 1.0 * l.dp * l.sp;
  auto held = [&](bool sharded) {  // ZeRO: each replica keeps 1/replicas of the part
    return sharded ? h.dense() / dense_replicas + h.expert / expert_replicas : static_cast<double>(h.total());
  };
  StageMemory mem;
  mem.weights = pb.weight * held(l.zero >= 3);
  mem.grads = pb.grad * held(l.zero >= 2);
  mem.optimizer = pb.optimizer * held(l.zero >= 1);
  mem.activations = stage_layer_microbatches(cfg, l, stage) * layer_activation_bytes(cfg, l, cost);
  if (stage_layers(cfg, l, stage).last)  // fp32 logits of one microbatch for the loss
    mem.activations += 4.0 * cfg.seq / l.sp * cfg.batch / (l.dp * l.ep * l.m) * cfg.vocab / l.tp;
  return mem;
}

StageTraffic stage_traffic(const ModelConfig& cfg, const PlanLayout& l, const PlanCluster& cl,
                           const PlanCostModel& cost, int stage) {
  return traffic_of(cfg, l, cost, spans_of(l, cl.gpus_per_node), stage);
}

PlanRow predict(const ModelConfig& cfg, const PlanLayout& l, const PlanCluster& cl, const PlanCostModel& cost) {
  PlanRow row;
  row.layout = l;
  const Spans spans = spans_of(l, cl.gpus_per_node);
  int most_layers = 0;
  for (int s = 0; s < l.pp; ++s) {
    const StageMemory mem = stage_memory(cfg, l, cost, s);
    if (s == 0 || mem.total() > row.memory.total()) row.memory = mem, row.memory_stage = s;
    const StageTraffic t = traffic_of(cfg, l, cost, spans, s);
    const double comm = t.intra / (cl.bw_intra_gbs * 1e9) + t.inter / (cl.bw_inter_gbs * 1e9);
    if (s == 0 || comm > row.comm_s) row.comm_s = comm, row.traffic = t;
    most_layers = std::max(most_layers, stage_layers(cfg, l, s).layers());
  }
  row.bubble = pipeline_bubble(l.pp, l.m, l.v);
  const double flops = ch01::train_flops_per_token(cfg, cfg.seq) * cfg.batch * cfg.seq;
  const double imbalance = most_layers / (1.0 * cfg.layers / l.pp);  // the slowest stage sets the pace
  row.compute_s = flops / l.world() / (cl.tflops * 1e12) * imbalance;
  row.time_s = row.compute_s / (1 - row.bubble) + row.comm_s;
  row.fits = row.memory.total() <= cl.mem_gib * 1024.0 * 1024.0 * 1024.0;
  return row;
}

PlanResult plan_layouts(const ModelConfig& cfg, const PlanCluster& cl, const PlanLimits& lim,
                        const PlanCostModel& cost) {
  PlanResult out;
  const int W = cl.gpus();
  for (int tp : divisors(W))
    for (int sp : divisors(W / tp))
      for (int ep : divisors(W / (tp * sp)))
        for (int pp : divisors(W / (tp * sp * ep))) {
          if (tp > lim.max_tp || sp > lim.max_sp || ep > lim.max_ep || pp > lim.max_pp) continue;
          if (ep > 1 && cfg.experts == 0) continue;  // a dense model has no expert axis to try
          const int dp = W / (tp * sp * ep * pp), rows = cfg.batch % (dp * ep) == 0 ? cfg.batch / (dp * ep) : 1;
          for (int m : divisors(rows))  // rows 1 when B does not split: m 1, rejected by the rule
            for (int v = 1; v <= lim.max_v; ++v)
              for (int zero : lim.zero) {
                if (zero > 0 && dp * sp * ep == 1) continue;  // no replicas to shard over: ZeRO-0's twin
                std::vector<StageTraffic> seen;  // the traffic of the orders kept so far
                for (const std::string& order : lim.orders) {
                  const PlanLayout l{tp, sp, ep, dp, pp, zero, m, v, lim.megatron_sp && tp > 1, order};
                  ++out.tried;
                  const std::string why = layout_problem(cfg, l, lim);
                  if (!why.empty()) {
                    ++out.rejected[why.substr(0, why.find(':'))];
                    continue;
                  }
                  const PlanRow row = predict(cfg, l, cl, cost);
                  const bool twin = std::any_of(seen.begin(), seen.end(), [&](const StageTraffic& t) {
                    return t.intra == row.traffic.intra && t.inter == row.traffic.inter;
                  });
                  if (twin) {  // the same bytes on the same links as an earlier order: shown once
                    ++out.same_as_earlier_order;
                    continue;
                  }
                  seen.push_back(row.traffic);
                  out.rows.push_back(row);
                }
              }
        }
  auto key = [](const PlanRow& r) {
    const PlanLayout& l = r.layout;
    return std::make_tuple(!r.fits, r.time_s, r.memory.total(), l.tp, l.sp, l.ep, l.pp, l.zero, l.m, l.v, l.order);
  };
  std::stable_sort(out.rows.begin(), out.rows.end(),
                   [&](const PlanRow& a, const PlanRow& b) { return key(a) < key(b); });
  return out;
}

}  // namespace fivefold::ch07
