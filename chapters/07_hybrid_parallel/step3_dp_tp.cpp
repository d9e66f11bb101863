// SPDX-License-Identifier: MIT
// Step 3: DP x TP training. The grid's tp groups run chapter 03's TP model (each rank one shard
// of every weight, activations all-reduced inside the group); its dp groups are chapter 02's
// data parallelism over the ranks that hold the SAME shard: each takes its rows of the global
// batch and the shard gradients are all-reduced over dp only, in buckets posted while the
// backward runs. Checked against the serial model on the whole global batch: the loss of every
// step, the step-0 gradients and the final parameters (each rank's shard vs its slice); every DP
// replica of a shard is bitwise identical, and so are the replicated norms on all ranks; the
// counted traffic of each group equals its formula and nothing goes over the world.
// Run: mpirun -np 4 build/cpu/bin/ch07_hybrid_parallel --step 3 --tp 2          (dp 2 x tp 2)
//      mpirun -np 8 build/cpu/bin/ch07_hybrid_parallel --step 3 --tp 2 --order dp-tp-sp-ep-pp
#include <chrono>

#include "backends/grid_comms.hpp"
#include "chapters/02_data_parallel/flat_layout.hpp"
#include "chapters/03_tensor_parallel/tp_costs.hpp"
#include "chapters/03_tensor_parallel/tp_gather.hpp"
#include "chapters/07_hybrid_parallel/dp_tp.hpp"
#include "chapters/07_hybrid_parallel/placement.hpp"
#include "chapters/07_hybrid_parallel/steps.hpp"
#include "common/narrate.hpp"
#include "common/npy.hpp"
#include "nn/model.hpp"

namespace fivefold::ch07 {

namespace {

using ch03::Split;

nn::Batch rows_of_step(const ModelConfig& cfg, int k, int count, int offset) {
  // The stream is deterministic per sequence: every layout trains on the same global batches.
  return nn::synthetic_batch(cfg.seed, cfg.vocab, count, cfg.seq, static_cast<std::int64_t>(k) * cfg.batch + offset);
}

/// The step-0 logits [B, T, V] of the whole global batch on world rank 0 (host; empty elsewhere):
/// each TP group gathers its rows' vocabulary columns, then the DP group gathers the rows
/// (padded to the largest b_d). Uncounted: a dump, not training.
Tensor gather_logits(Context& ctx, Communicator& tp, Communicator& dp, const Tensor& mine,
                     const ch02::BatchSplit& split, const ModelConfig& cfg) {
  const Tensor rows = ch03::gather_full(tp, ctx.ops, mine, Split::cols);  // [b_d, T, V]
  const std::int64_t row = static_cast<std::int64_t>(cfg.seq) * cfg.vocab, most = split.count(0) * row;
  Tensor padded = Tensor::zeros({most});
  padded.flat(0, rows.numel()).copy_from(rows.view({rows.numel()}));
  Tensor all = ctx.ops.empty({dp.size() * most});
  ch03::uncounted(dp, [&] { dp.all_gather(ctx.ops.upload(padded), all); });
  if (ctx.rank() != 0) return Tensor();
  const Tensor h = all.to(Device::host);
  Tensor out = Tensor::empty({cfg.batch, cfg.seq, cfg.vocab});
  for (int q = 0; q < split.n; ++q)
    out.flat(split.offset(q) * row, split.count(q) * row).copy_from(h.flat(q * most, split.count(q) * row));
  return out;
}

CommCounts sum(const CommCounts& a, const CommCounts& b) {
  CommCounts out = a;
  for (const auto& [op, c] : b) out[op].calls += c.calls, out[op].payload_bytes += c.payload_bytes;
  return out;
}

}  // namespace

void step3_dp_tp(Context& ctx, const Options& o) {
  const std::string why = dp_tp_blocker(o, ctx.size());
  if (!why.empty()) {
    ctx.narrator.say("Step 3 trains a grid of tp and dp only, and this run's cannot: " + why + ".\n"
                     "Skipped (e.g. mpirun -np 4 ch07_hybrid_parallel --step 3 --tp 2).");
    return;
  }
  const ModelConfig& cfg = o.model;
  const ProcessGrid grid = make_grid(o, ctx.size());
  const int me = ctx.rank(), tpn = grid.size(Axis::tp), dpn = grid.size(Axis::dp);
  const int t = grid.coord(me, Axis::tp), d = grid.coord(me, Axis::dp);
  const GridComms comms(ctx.world, grid, {AxisSet{Axis::tp}, AxisSet{Axis::dp}});
  Communicator& tp = comms.get("tp");
  Communicator& dp = comms.get("dp");
  const ch02::BatchSplit split{cfg.batch, dpn};
  const int b = split.count(d);

  ctx.narrator.say("3a. " + grid.describe() + ". A rank (tp t, dp d) holds TP shard t of every weight and trains\n"
                   "    on rows offset(d).. of the global batch. TP group: same rows, different shards (chapter 03).\n"
                   "    DP group: same shard, different rows (chapter 02). tp groups " +
                   show_groups(grid.groups(AxisSet{Axis::tp})) + ", dp groups " +
                   show_groups(grid.groups(AxisSet{Axis::dp})) + ".");
  ctx.say_ranks("(tp " + std::to_string(t) + ", dp " + std::to_string(d) + "): shard " + std::to_string(t) + "/" +
                std::to_string(tpn) + " of every matrix, sequences " + std::to_string(split.offset(d)) + ".." +
                std::to_string(split.offset(d) + b - 1) + " (weight b_d/B = " + fmt("%.4f", split.weight(d)) +
                "), tp group " + show_group(grid.group_of(me, AxisSet{Axis::tp})) + ", dp group " +
                show_group(grid.group_of(me, AxisSet{Axis::dp})));

  DpTpConfig dc;
  dc.bucket_mb = o.bucket_mb;
  dc.overlap = !o.no_overlap;
  DpTpTrainer trainer(ctx.ops, tp, dp, cfg, dc);
  ch03::TpModel& model = trainer.model();
  nn::Model serial(ctx.ops, cfg);
  nn::AdamW sopt(ctx.ops, nn::AdamWConfig::from(cfg), serial.params());
  ctx.check(ch03::check_all_shards("initial shards == serial slices (exact)", model.params(), serial.params(), t, tpn,
                                   false, 0.0));

  const std::string dir = me == 0 ? ctx.options.dump : "";
  const bool dumping = !ctx.options.dump.empty();  // the same on every rank (the gathers are collective)
  if (dumping && d == 0) {  // parameters: dp 0's TP group gathers them, world rank 0 writes
    if (!dir.empty()) {
      nlohmann::json j = grid_config(o, ctx.size());
      j["backend"] = ctx.options.backend;
      ch03::write_config_json(dir, j);
    }
    ch03::dump_full_params(tp, ctx.ops, model.params(), dir, "params", false);
  }

  std::vector<double> losses, ref_losses;
  CommCounts tp_total, dp_total, world_total;
  ctx.world.reset_counts();
  double seconds = 0;
  for (int k = 0; k < cfg.steps; ++k) {
    const nn::Batch global = rows_of_step(cfg, k, cfg.batch, 0);
    serial.zero_grad();
    ref_losses.push_back(serial.forward(global.inputs, global.targets));
    serial.backward();

    tp.reset_counts();
    dp.reset_counts();
    const auto t0 = std::chrono::steady_clock::now();
    const double mine = trainer.step(rows_of_step(cfg, k, b, split.offset(d)), split.weight(d));
    ctx.ops.synchronize();
    if (k > 0) seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    tp_total = sum(tp_total, tp.counts());
    dp_total = sum(dp_total, dp.counts());
    // The global mean loss = sum_d (b_d / B) * mean_d; one tp rank per dp group contributes
    // (uncounted: bookkeeping for the table, not training).
    const float part = t == 0 ? static_cast<float>(mine * split.weight(d)) : 0.0f;
    Tensor l = ctx.ops.upload(Tensor::from_vector(std::vector<float>{part}, {1}));
    ch03::uncounted(ctx.world, [&] { ctx.world.all_reduce(l); });
    losses.push_back(l.to_vector()[0]);

    if (k == 0) {
      ctx.check(ch03::check_all_shards("step-0 gradients (reduced over dp) == serial slices", model.params(),
                                       serial.params(), t, tpn, true, 1e-5));
      if (dumping) {
        const Tensor logits = gather_logits(ctx, tp, dp, model.logits(), split, cfg);
        if (!dir.empty()) {
          npy::save(dir + "/inputs.npy", global.inputs);
          npy::save(dir + "/targets.npy", global.targets);
          npy::save(dir + "/logits.npy", logits);
        }
        if (d == 0) ch03::dump_full_params(tp, ctx.ops, model.params(), dir, "grads", true);
      }
    }
    if (!dir.empty()) {
      npy::save(dir + "/inputs_s" + std::to_string(k) + ".npy", global.inputs);
      npy::save(dir + "/targets_s" + std::to_string(k) + ".npy", global.targets);
    }
    sopt.step();
  }
  world_total = ctx.world.counts();

  if (!trainer.schedule().empty() && !ctx.narrator.quiet()) {
    std::string s;
    for (const std::string& e : trainer.schedule()) s += (s.empty() ? "" : " ") + e;
    const char* how = dc.overlap ? "a DP bucket is posted once its units are done and runs during the next units"
                                 : "--no-overlap: the DP buckets are all-reduced after the backward";
    ctx.narrator.say(std::string("3b. The backward of step 0 on this rank, unit by unit (the TP all-reduces run\n"
                                 "    inside the head and layer units); ") + how + ":\n    " + s);
  }

  ctx.check_losses("Loss per step: DP x TP (global batch) vs serial", "dp x tp", losses, ref_losses, 1e-5);
  ctx.check(ch03::check_all_shards("parameters after " + std::to_string(cfg.steps) + " steps == serial slices",
                                   model.params(), serial.params(), t, tpn, false, 1e-4));
  ctx.check(ch03::identical_across(dp, ctx.ops, model.params(), "every DP replica of a shard identical (bitwise)",
                                   [](const std::string&) { return true; }));
  ctx.check(ch03::identical_across(ctx.world, ctx.ops, model.params(),
                                   "replicated norm weights identical on all ranks, tp and dp (bitwise)",
                                   [](const std::string& n) { return ch03::split_of(n) == Split::replicated; }));

  // What moved where: TP activations inside tp groups, shard gradients inside dp groups.
  ModelConfig local = cfg;
  local.batch = b;  // a TP group's all-reduces carry its own b_d sequences
  const ch03::CommCost f = ch03::model_forward_cost(local), bw = ch03::model_backward_cost(local);
  const std::int64_t shard = ch03::params_per_rank(cfg, tpn), S = cfg.steps;
  const std::string dp_op = dc.overlap ? "iall_reduce" : "all_reduce";
  const CommEntry te = Context::entry("tp", "all_reduce", tp_total, S * (f.calls + bw.calls), S * (f.bytes + bw.bytes));
  const CommEntry de = Context::entry("dp", dp_op, dp_total, S * static_cast<std::int64_t>(trainer.buckets().size()),
                                      S * 4 * shard);
  CommCounts any;  // every op on the world communicator together: training must use none
  for (const auto& [op, c] : world_total) any["any"].calls += c.calls, any["any"].payload_bytes += c.payload_bytes;
  const CommEntry we = Context::entry("world", "any", any, 0, 0);
  for (const CommEntry& e : {te, de, we}) ctx.comm(e);
  const double step2_psi = rank_params(grid, cfg).dense;  // step 2's traffic model of this grid
  const bool all_match = te.matches() && de.matches() && we.matches();
  ctx.narrator.say("3c. Per step, on rank 0 (b_d = " + std::to_string(b) + " rows):\n    tp: " +
                   std::to_string(te.calls / S) + " all-reduces of activations, " +
                   human_bytes(static_cast<double>(te.payload_bytes) / S) +
                   " handed to them (chapter 03's formula at N = b_d T)\n    dp: " + std::to_string(de.calls / S) +
                   " " + dp_op + " of the shard gradients, " +
                   human_bytes(static_cast<double>(de.payload_bytes) / S) + " = 4 x " + std::to_string(shard) +
                   " elements, 1/tp of the matrices plus the norms\n"
                   "        (serial model: " + std::to_string(serial.params().numel()) +
                   "; step 2's Psi for this grid: " + fmt("%.0f", step2_psi) +
                   ", of which a ring sends 2(dp-1)/dp on the link)\n    world: " + std::to_string(we.calls) +
                   " calls. Counted == formula: " + (all_match ? "yes" : "NO") + ".");
  if (cfg.steps > 1)
    ctx.narrator.say("Time per training step (this rank, after the first): " +
                     fmt("%.2f", 1e3 * seconds / (cfg.steps - 1)) + " ms (ranks share the cores here).");

  const std::int64_t held = model.params().numel();
  ctx.summary.param_bytes_per_rank.clear();
  for (const std::string& s : ctx.gather(std::to_string(4 * held)))
    ctx.summary.param_bytes_per_rank.push_back(std::stoll(s));

  if (dumping && d == 0) {
    ch03::dump_full_params(tp, ctx.ops, model.params(), dir, "final", false);
    if (!dir.empty()) {
      npy::save(dir + "/loss.npy", Tensor::from_vector(std::vector<float>(losses.begin(), losses.end()), {cfg.steps}));
      ctx.narrator.say("--dump: wrote " + dir + " (full tensors, gathered from the shards of the ranks with dp 0).");
    }
  }
}

}  // namespace fivefold::ch07
