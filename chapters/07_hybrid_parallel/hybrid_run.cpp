// SPDX-License-Identifier: MIT
// One hybrid training run against the serial model, with what each group moved.
#include "chapters/07_hybrid_parallel/hybrid_run.hpp"

#include "chapters/05_sequence_parallel/sp_layout.hpp"
#include "chapters/06_expert_parallel/ep_moe.hpp"
#include "chapters/07_hybrid_parallel/planner.hpp"
#include "common/narrate.hpp"
#include "nn/model.hpp"

namespace fivefold::ch07 {

namespace {

std::string holds(HybridModel& m, const ProcessGrid& g, int r, const ModelConfig& c, const HybridConfig& hc) {
  const auto k = g.coords(r);
  const int tp = g.size(Axis::tp), sp = g.size(Axis::sp), ep = g.size(Axis::ep);
  const auto chunks = ch04::rank_chunks(c.layers, g.size(Axis::pp), 1, k[static_cast<int>(Axis::pp)]);
  std::string s = "layers " + std::to_string(chunks[0].first) + ".." + std::to_string(chunks[0].second - 1);
  if (tp > 1) s += ", shard " + std::to_string(k[0]) + "/" + std::to_string(tp);
  if (c.experts > 0) {
    const auto [first, n] = ch06::experts_of(c.experts, ep, k[static_cast<int>(Axis::ep)]);
    s += ", experts " + std::to_string(first) + ".." + std::to_string(first + n - 1);
  }
  s += ", sequences " + std::to_string(m.data_rank() * m.rows()) + ".." + std::to_string((m.data_rank() + 1) * m.rows() - 1);
  if (sp > 1) {
    s += ", positions";
    for (const ch05::Segment& q : ch05::local_segments(hc.sp_mode, c.seq, sp, k[1]))
      s += " " + std::to_string(q.start) + ".." + std::to_string(q.start + q.len - 1);
  } else if (hc.megatron_sp && tp > 1) {
    s += ", positions " + std::to_string(k[0] * c.seq / tp) + ".." + std::to_string((k[0] + 1) * c.seq / tp - 1) +
         " between the tp regions";
  }
  return s + " (" + human_bytes(static_cast<double>(m.params().numel() * 4)) + " of parameters)";
}

}  // namespace

ProcessGrid step_grid(const Options& o, int step, int world) {
  return degrees_given(o) ? make_grid(o, world) : default_grid(step, world, o.model.layers);
}

HybridConfig step_config(const Options& o, int step, int world) {
  HybridConfig hc;
  hc.model = o.model;
  hc.megatron_sp = o.sp_mode == "megatron";
  hc.sp_mode = hc.megatron_sp ? ch05::SpMode::ring : ch05::parse_sp_mode(o.sp_mode);
  hc.microbatches = o.microbatches;
  hc.dp.bucket_mb = o.bucket_mb;
  hc.dp.overlap = !o.no_overlap;
  hc.dp.zero1 = o.zero == 1;
  if (step == 6 && hc.model.experts == 0) {  // the chapter's default model is dense: step 6 gives it experts
    hc.model.experts = 4;
    hc.model.moe_every = 1;
    if (hc.model.capacity_factor == 0.0) hc.model.capacity_factor = 1.0;  // drops: the capacity order matters
  }
  if (step == 6 && !degrees_given(o) && step_grid(o, step, world).size(Axis::tp) > 1) hc.megatron_sp = true;
  return hc;
}

std::string step_blocker(const Options& o, int step, int world) {
  if (grid_world(o, world) != world)
    return "--world " + std::to_string(grid_world(o, world)) + " is not the job's " + std::to_string(world) + " rank(s)";
  const ProcessGrid grid = step_grid(o, step, world);
  const HybridConfig hc = step_config(o, step, world);
  const std::string why = hybrid_blocker(grid, hc);
  if (!why.empty()) return why;
  const bool seq_split = grid.size(Axis::sp) > 1 || (hc.megatron_sp && grid.size(Axis::tp) > 1);
  if (step == 4 && (grid.size(Axis::sp) > 1 || grid.size(Axis::ep) > 1 || hc.megatron_sp))
    return "step 4 is dp x tp x pp: sp, ep and --sp-mode megatron are steps 5 and 6 (use --sp 1 --ep 1)";
  if (step == 5 && (grid.size(Axis::ep) > 1 || hc.model.experts > 0))
    return "step 5 trains a dense model without ep: experts are step 6 (drop --ep/--experts)";
  if (step == 5 && !seq_split)
    return "nothing splits the sequence: give --sp 2 (ring/zigzag) or --tp 2 --sp-mode megatron";
  return "";
}


namespace {

/// The ops a run counts that the planner's rank_group_bytes leaves out, or counts another way:
/// Megatron-SP's gathers and scatters, MoE's exchanges, chapter 02's buckets and ZeRO-1.
std::map<std::pair<std::string, std::string>, OpCount> expected_traffic(const HybridRun& run, const ProcessGrid& g,
                                                                         const HybridConfig& hc, int rank) {
  const ModelConfig& c = hc.model;
  const int tp = g.size(Axis::tp), sp = g.size(Axis::sp), ep = g.size(Axis::ep), dp = g.size(Axis::dp);
  const int pp = g.size(Axis::pp), m = hc.microbatches, stage = g.coord(rank, Axis::pp);
  const bool megatron = hc.megatron_sp && tp > 1;
  PlanLayout l;
  l.tp = tp, l.sp = sp, l.ep = ep, l.dp = dp, l.pp = pp, l.m = m, l.order = g.order_name();
  const auto chunk = ch04::rank_chunks(c.layers, pp, 1, stage)[0];
  std::int64_t moe = 0;
  for (int i = chunk.first; i < chunk.second; ++i) moe += c.is_moe_layer(i) ? 1 : 0;
  const std::int64_t Ls = chunk.second - chunk.first, e = chunk.first == 0, h = chunk.second == c.layers;
  const std::int64_t bm = c.batch / (ep * dp) / m, C = c.dim;
  std::map<std::pair<std::string, std::string>, OpCount> want;
  auto add = [&](const std::string& grp, const std::string& op, std::int64_t calls, std::int64_t bytes) {
    OpCount& o = want[{grp, op}];
    o.calls += calls;
    o.payload_bytes += bytes;
  };
  if (!megatron) {  // TUTORIAL: the planner's exact formulas (planner.hpp) are what the run must count
    for (const GroupTraffic& t : rank_group_bytes(c, l, stage)) add(t.group, t.op, t.calls, t.bytes);
  } else {  // Megatron-SP (chapter 05): an all-gather along T and a reduce-scatter per region and pass
    const std::int64_t regions = Ls + (Ls - moe), n = e + h;  // attention + dense MLPs; embedding, head
    add("tp", "all_gather", m * (2 * regions + n), m * (2 * regions + n) * bm * (c.seq / tp) * C * 4);
    add("tp", "reduce_scatter", m * (2 * regions + n), m * (2 * regions + n) * bm * c.seq * C * 4);
    if (h) add("tp", "all_reduce", 3 * m, 3 * m * bm * c.seq * 4);  // the vocab-parallel loss
    const HeldParams held = rank_param_elements(c, l, stage);
    add("tp", "all_reduce", 1, 4 * (held.replicated + held.expert));  // norms, routers, experts: my positions only
    if (dp > 1) add("dp", "all_reduce", 1, 4 * held.total());
    if (ep > 1) add("ep", "all_reduce", 1, 4 * held.dense());
    if (pp > 1) add("pp", "isend", m * (2 - e - h), m * (2 - e - h) * bm * (c.seq / tp) * C * 4);
  }
  if (moe > 0) {
    const int split = megatron ? tp : sp;  // the group a sequence is split over
    if (split > 1) {  // the per-segment counts, one all-gather per MoE layer and microbatch
      const std::int64_t G = !megatron && hc.sp_mode == ch05::SpMode::zigzag ? 2 : 1;
      add(megatron ? "tp" : "sp", "all_gather", m * moe, m * moe * 2 * bm * G * c.experts * 4);
    }
    if (c.capacity_factor > 0) {  // fixed buffers: E x b_m x capacity rows, 4 exchanges (ep 1 too)
      const std::int64_t rows = c.experts * bm * nn::expert_capacity(c.capacity_factor, c.topk, c.seq, c.experts);
      add("ep", "all_to_all", 4 * m * moe, 4 * m * moe * rows * C * 4);
    }
  }
  if (run.bucketed) {  // chapter 02's buckets (or ZeRO-1) instead of one packed all-reduce
    const OpCount ar = want[{"dp", "all_reduce"}];
    want.erase({"dp", "all_reduce"});
    if (hc.dp.zero1) {  // the packed shard padded to a multiple of dp: reduce-scatter it, all-gather 1/dp
      add("dp", "reduce_scatter", 1, run.dp_padded * 4);
      add("dp", "all_gather", 1, run.dp_padded / dp * 4);
    } else {
      add("dp", hc.dp.overlap ? "iall_reduce" : "all_reduce", run.dp_buckets, ar.payload_bytes);
    }
  }
  return want;
}

}  // namespace

void check_traffic(Context& ctx, const HybridRun& run, const ProcessGrid& grid, const HybridConfig& hc) {
  const auto want = expected_traffic(run, grid, hc, ctx.rank());
  for (const auto& [key, o] : want)
    ctx.comm(Context::entry(key.first, key.second, run.groups.at(key.first), run.steps * o.calls,
                            run.steps * o.payload_bytes));
  // Whatever else was counted must be known: dropless MoE's count and row exchanges follow the
  // routing (chapter 06 checks those), receives mirror the sends.
  const bool dropless_ep = hc.model.experts > 0 && hc.model.capacity_factor == 0.0;
  for (const auto& [grp, ops] : run.groups)
    for (const auto& [op, n] : ops) {
      if (n.calls == 0 || want.count({grp, op}) || op == "recv" || op == "irecv") continue;
      if (dropless_ep && grp == "ep" && (op == "all_to_all" || op == "all_to_allv")) continue;
      ctx.comm(Context::entry(grp, op, ops, 0, 0));  // counted, not predicted: shows as a miss
    }
}

OpCount counted(const HybridRun& run, const std::string& group, const std::string& op) {
  const auto g = run.groups.find(group);
  if (g == run.groups.end()) return {};
  const auto it = g->second.find(op);
  return it == g->second.end() ? OpCount{} : it->second;
}

HybridRun train_hybrid(Context& ctx, const std::string& label, const ProcessGrid& grid, const HybridConfig& hc) {
  const ModelConfig& c = hc.model;
  const GridComms comms(ctx.world, grid, hybrid_sets());
  HybridModel model(ctx.ops, ctx.world, comms, hc);
  std::unique_ptr<nn::Synchroniser> sync = model.make_sync(nn::AdamWConfig::from(c));
  ctx.say_ranks(holds(model, grid, ctx.rank(), c, hc));
  const nn::ReferenceRun ref = nn::train_reference(ctx.ops, c, [&](int k) { return nn::stream_batch(c, k); });

  for (const char* g : kHybridGroups) comms.get(AxisSet::parse(g)).reset_counts();
  std::vector<double> losses;
  ch04::StepRecord rec;
  for (int k = 0; k < c.steps; ++k) losses.push_back(model.step(*sync, nn::stream_batch(c, k), &rec));
  HybridRun run;
  for (const char* g : kHybridGroups) run.groups[g] = comms.get(AxisSet::parse(g)).counts();
  run.steps = c.steps;
  run.stage_numel = model.params().numel();
  run.param_bytes = run.stage_numel * 4;
  run.peak_activation_bytes = rec.peak_bytes;
  run.bucketed = model.bucketed();
  if (const auto* ddp = dynamic_cast<const ShardDdp*>(sync.get())) {
    run.dp_buckets = static_cast<std::int64_t>(ddp->buckets().size());
    run.dp_padded = ddp->layout().padded();
  }
  for (const ch06::EpMoeLayer* l : model.moe_layers()) {  // every forward routed rows() x act_len() tokens
    run.kept += l->stats().real_rows;
    run.assignments += static_cast<std::int64_t>(c.steps) * model.rows() * model.act_len() * c.topk;
  }
  if (const auto* su = dynamic_cast<const nn::SummedUpdate*>(sync.get()))
    for (int a = 0; a < 4; ++a) run.summed_bytes[a] = su->bytes(1u << a);

  ctx.check_losses("Loss per step: " + label + " vs serial", label, losses, ref.losses, 1e-5,
                   label + ": loss per step == serial");
  ctx.check(compare_blocks(label + ": every rank's parameters after " + std::to_string(c.steps) +
                               " steps == its block of serial's",
                           model.params(), ref.final, false, 1e-4));

  // What each group moved per step on this rank (rank 0 shown; every rank is in the JSON).
  Table t;
  t.title = "Traffic per step on rank 0, by group (counted payload bytes, the rules of the communicator)";
  t.header = {"group", "size", "op", "calls/step", "bytes/step"};
  nlohmann::json mine = nlohmann::json::object();
  for (const char* g : kHybridGroups)
    for (const auto& [op, n] : run.groups[g]) {
      if (n.calls == 0) continue;
      t.add({g, std::to_string(grid.size(AxisSet::parse(g))), op, fmt("%.1f", static_cast<double>(n.calls) / c.steps),
             human_bytes(static_cast<double>(n.payload_bytes) / c.steps)});
      mine[g][op] = {{"calls", n.calls / c.steps}, {"payload_bytes", n.payload_bytes / c.steps}};
    }
  ctx.show(t);
  check_traffic(ctx, run, grid, hc);
  nlohmann::json& sec = ctx.summary.sections["hybrid"][label];
  for (Axis a : kAllAxes) sec[axis_name(a)] = grid.size(a);
  sec["order"] = grid.order_name();
  sec["sp_mode"] = hc.megatron_sp ? "megatron" : ch05::sp_mode_name(hc.sp_mode);
  sec["microbatches"] = hc.microbatches;
  sec["ranks"] = nlohmann::json::array();
  const nlohmann::json me = {{"param_bytes", run.param_bytes}, {"peak_activation_bytes", run.peak_activation_bytes},
                             {"per_step", mine}};
  for (const std::string& s : ctx.gather(me.dump())) sec["ranks"].push_back(nlohmann::json::parse(s));
  return run;
}

}  // namespace fivefold::ch07
