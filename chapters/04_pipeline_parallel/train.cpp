// SPDX-License-Identifier: MIT
// One pipelined training run with its checks against the serial run, its traffic per pair of
// stages against the layout, its peak activations against the formula (steps 1-5 use it).
#include <cstring>

#include "chapters/04_pipeline_parallel/dump.hpp"
#include "chapters/04_pipeline_parallel/steps.hpp"
#include "common/check.hpp"

namespace fivefold::ch04 {

namespace {

/// @p params against @p ref (by name), merged into one check.
CheckResult compare_params(const std::string& name, nn::ParamRegistry& params, const std::map<std::string, Tensor>& ref,
                           bool grads, double tol) {
  CheckResult acc{name, 0, 0, tol, true};
  for (const nn::Param& p : params.all()) merge(acc, compare(name, grads ? p.grad : p.value, ref.at(p.name), tol));
  return acc;
}

/// Messages this rank sends per step on each route, from the layout: virtual stage k sends its
/// m activations to k+1 ('F') and its m input gradients to k-1 ('B').
std::map<Route, OpCount> layout_sends(const Schedule& s, int rank, std::int64_t bytes_per_msg) {
  std::map<Route, OpCount> out;
  const int V = s.stages();
  for (int k = rank; k < V; k += s.p) {
    for (int to : {k + 1, k - 1}) {
      if (to < 0 || to >= V) continue;
      OpCount& c = out[{rank, to % s.p, to > k ? 'F' : 'B'}];
      c.calls += s.m;
      c.payload_bytes += s.m * bytes_per_msg;
    }
  }
  return out;
}

/// Every parameter of the model on every rank, each broadcast by the stage that holds it
/// (uncounted: a check's bookkeeping, not the pipeline's traffic).
std::map<std::string, Tensor> all_params(Communicator& pp, Ops& ops, PipelineStage& stage, const ModelConfig& cfg) {
  Uncounted quiet(pp);
  std::map<std::string, Tensor> out;
  for (const nn::ParamSpec& spec : nn::model_param_specs(cfg)) {
    int owner = 0;
    while (!chunk_holds(rank_chunks(cfg.layers, pp.size(), stage.num_chunks(), owner), cfg.layers, spec.name)) ++owner;
    Tensor t = pp.rank() == owner ? stage.params().get(spec.name).value.clone()
                                  : Tensor::empty(spec.shape, DType::f32, ops.device());
    pp.broadcast(t, owner);
    out[spec.name] = t;
  }
  return out;
}

/// The run's section of the summary ("pipeline" -> schedule name): per rank its peak passes
/// (measured, formula), peak activation bytes, and what it sent per route (counted, layout).
/// Sets the summary's memory to this run's (parameters, peak activation bytes per rank).
void record_json(Context& ctx, const std::string& name, const TrainRun& run, const std::map<Route, OpCount>& want,
                 int peak_want, std::int64_t param_bytes) {
  nlohmann::json mine = {{"peak_passes", run.last.peak_passes},
                         {"peak_passes_formula", peak_want},
                         {"peak_activation_bytes", run.last.peak_bytes},
                         {"param_bytes", param_bytes},
                         {"p2p", nlohmann::json::array()}};
  for (const auto& [route, c] : want) {
    const OpCount got = run.sent.count(route) ? run.sent.at(route) : OpCount{};
    mine["p2p"].push_back({{"from", std::get<0>(route)},
                           {"to", std::get<1>(route)},
                           {"kind", std::get<2>(route) == 'F' ? "activations" : "gradients"},
                           {"calls", got.calls},
                           {"payload_bytes", got.payload_bytes},
                           {"predicted_calls", c.calls},
                           {"predicted_payload_bytes", c.payload_bytes}});
  }
  nlohmann::json& sec = ctx.summary.sections["pipeline"][name];
  sec["schedule"] = schedule_name(run.schedule.kind);
  sec["p"] = run.schedule.p;
  sec["m"] = run.schedule.m;
  sec["v"] = run.schedule.v;
  sec["ranks"] = nlohmann::json::array();
  ctx.summary.param_bytes_per_rank.clear();
  ctx.summary.peak_bytes_per_rank.clear();
  for (const std::string& s : ctx.gather(mine.dump())) {
    const nlohmann::json j = nlohmann::json::parse(s);
    ctx.summary.param_bytes_per_rank.push_back(j["param_bytes"].get<std::int64_t>());
    ctx.summary.peak_bytes_per_rank.push_back(j["peak_activation_bytes"].get<std::int64_t>());
    sec["ranks"].push_back(j);
  }
}

}  // namespace

TrainRun& train(Context& ctx, Lab& lab, ScheduleKind kind, int m, int v, bool dump) {
  const ModelConfig& cfg = lab.o.cfg;
  Communicator& pp = pp_group(ctx, lab);
  const int p = pp.size(), r = pp.rank();
  const SerialRun& ref = serial(ctx, lab);
  TrainRun run;
  run.schedule = make_schedule(kind, p, m, v);
  const std::string name = schedule_name(kind) + (m == 1 ? " (one batch)" : "");
  run.name = name;
  PipelineStage stage(ctx.ops, cfg, p, v, r);
  StageLink link(pp, ctx.ops);
  PipelineRunner runner(stage, link, run.schedule);
  nn::LocalUpdate update(ctx.ops, stage.params(), nn::AdamWConfig::from(cfg));  // TUTORIAL: each stage updates its own layers
  StageDump out(ctx, lab, stage, dump);
  pp.reset_counts();
  for (int k = 0; k < cfg.steps; ++k) {
    runner.keep_logits(dump && k == 0);
    const nn::Batch batch = batch_of_step(lab.o, k);
    out.step_begin(k, batch);
    run.losses.push_back(runner.step(update, split_batch(batch, m), &run.last));
    if (k == 0) {
      ctx.check(compare_params(name + ": step-0 gradients == serial", stage.params(), ref.grads0, true, 1e-5));
      out.step0(runner);
    }
  }
  run.sent = link.sent();
  for (const nn::Param& p : stage.params().all()) run.final[p.name] = p.value.clone();
  out.finish(run.losses);

  // Equal to serial, and bit for bit to the first schedule that ran the same microbatches.
  ctx.check_losses("Loss per step: " + name + " vs serial", "pipeline", run.losses, ref.losses, 1e-5,
                   name + ": loss per step == serial");
  ctx.check(compare_params(name + ": parameters after " + std::to_string(cfg.steps) + " AdamW steps == serial",
                           stage.params(), ref.final, false, 1e-4));
  if (!lab.first_final.count(m)) {
    lab.first_final[m] = all_params(pp, ctx.ops, stage, cfg);
    lab.first_name[m] = schedule_name(kind);
  } else {
    ctx.check(compare_params(name + ": parameters == " + lab.first_name[m] + "'s (bit for bit: the same sums in the same order)",
                             stage.params(), lab.first_final[m], false, 0.0));
  }

  // Traffic: what each rank sent to each rank, against the layout's count.
  const std::int64_t b = cfg.batch / m, msg = b * cfg.seq * cfg.dim * 4;  // TUTORIAL: one [b, T, C] fp32 tensor
  std::map<Route, OpCount> want = layout_sends(run.schedule, r, msg);
  std::int64_t calls = 0, bytes = 0, want_calls = 0, want_bytes = 0;
  for (auto& [pair, c] : want) {
    c.calls *= cfg.steps;
    c.payload_bytes *= cfg.steps;
    const OpCount got = run.sent.count(pair) ? run.sent.at(pair) : OpCount{};
    calls += got.calls;
    bytes += got.payload_bytes;
    want_calls += c.calls;
    want_bytes += c.payload_bytes;
  }
  for (const auto& [pair, got] : run.sent)
    if (!want.count(pair)) calls += got.calls, bytes += got.payload_bytes;  // a message the layout does not have
  ctx.comm(Context::entry("pp:" + schedule_name(kind) + (m == 1 ? ":m1" : ""), "isend", pp.counts(), want_calls,
                          want_bytes));
  ctx.comm(Context::entry("pp:" + schedule_name(kind) + (m == 1 ? ":m1" : ""), "recv", pp.counts(), want_calls,
                          want_bytes));  // every message sent is received once; the ring of ranks is symmetric
  std::ostringstream line;
  for (const auto& [pair, c] : want) {
    const OpCount got = run.sent.count(pair) ? run.sent.at(pair) : OpCount{};
    line << "to rank " << std::get<1>(pair) << (std::get<2>(pair) == 'F' ? " (activations)" : " (gradients)") << ": " << got.calls / cfg.steps << " msgs, " << human_bytes(static_cast<double>(got.payload_bytes) / cfg.steps)
         << " per step (layout: " << c.calls / cfg.steps << ", " << human_bytes(static_cast<double>(c.payload_bytes) / cfg.steps)
         << ");  ";
  }
  ctx.narrator.say("Point-to-point traffic (isend of [b, T, C] = " + human_bytes(static_cast<double>(msg)) + " each):");
  ctx.say_ranks(line.str().empty() ? "sends nothing (one stage)" : line.str());
  long long all_calls = 0;
  for (const std::string& s : ctx.gather(std::to_string(calls))) all_calls += std::stoll(s);
  ctx.check(compare_exact(name + ": messages per step, all links == " + (v > 1 ? "2(v*p-1)*m" : "2(p-1)*m") + " = " +
                      std::to_string(messages_formula(p, m, v)),
                  static_cast<double>(all_calls) / cfg.steps, static_cast<double>(messages_formula(p, m, v))));

  // Peak activations: passes held at once, measured in the run vs the formula.
  const int peak_want = peak_passes_formula(kind, p, m, v, r);
  ctx.check(compare_exact(name + ": peak passes holding activations == formula", run.last.peak_passes, peak_want));
  record_json(ctx, name, run, want, peak_want, stage.params().numel() * 4);
  ctx.say_ranks("passes holding activations at once: at most " + std::to_string(run.last.peak_passes) + " (formula " +
                std::to_string(peak_want) + "), " + human_bytes(static_cast<double>(run.last.peak_bytes)) +
                " of tensors; one forward pass keeps " + human_bytes(static_cast<double>(run.last.first_pass_bytes)));
  return lab.runs[name] = std::move(run);
}

TrainRun* schedule_step(Context& ctx, Lab& lab, ScheduleKind kind, int v, const std::string& idea) {
  if (!wants(lab, kind)) {
    ctx.narrator.say("(skipped: --schedule " + lab.o.schedule + ")");
    return nullptr;
  }
  const ModelConfig& cfg = lab.o.cfg;
  const std::string bad = check_layout(kind, cfg.layers, pp_group(ctx, lab).size(), lab.o.microbatches, v, cfg.batch);
  if (!bad.empty()) {
    ctx.narrator.say("(skipped at this layout: " + bad + ")");
    return nullptr;
  }
  ctx.narrator.say(idea);
  TrainRun& run = train(ctx, lab, kind, lab.o.microbatches, v, dump_schedule(lab) == kind && !ctx.options.dump.empty());
  show_timeline(ctx, run);
  return &run;
}

void show_timeline(Context& ctx, const TrainRun& run) {
  const std::vector<std::vector<PassEvent>> events = gather_events(ctx, run.last);
  Schedule ran = run.schedule;  // the orders the ranks really ran, not the ones they were given
  for (std::size_t q = 0; q < events.size(); ++q) {
    ran.ranks[q].clear();
    for (const PassEvent& e : events[q]) ran.ranks[q].push_back(e.a);
  }
  const Replay units = replay_units(ran);
  ctx.narrator.say("The last step's passes in the order each rank ran them, placed in unit time (F = B = W = 1" +
                   std::string(ran.split_backward ? "" : "; a whole backward shows as B then W, its gradient leaving after W") +
                   "):");
  std::string text;
  for (const std::string& l : timeline(ran)) text += "  " + l + "\n";
  ctx.narrator.say(text);
  const double formula = bubble_formula(ran.kind, ran.p, ran.m, ran.v);
  const bool closed = !(ran.kind == ScheduleKind::zb_h1 && ran.m < ran.p);
  nlohmann::json& bubble = ctx.summary.sections["pipeline"][run.name]["bubble"];
  bubble["closed_form"] = closed ? nlohmann::json(formula) : nlohmann::json();
  bubble["unit_replay_per_rank"] = nlohmann::json::array();
  for (int q = 0; q < ran.p; ++q) bubble["unit_replay_per_rank"].push_back(units.idle_share(q));
  bubble["measured_per_rank"] = measured_idle(events);
  ctx.narrator.say("Bubble at unit times: " + fmt("%.4f", units.idle_share(0)) + " of the step on every rank; closed form " +
                   (closed ? fmt("%.4f", formula) : std::string("n/a (ZB-H1's closed form needs m >= p)")) + ".");
  if (closed) {
    CheckResult c = compare_exact(schedule_name(ran.kind) + ": unit-time bubble of every rank == closed form", 0, 0);
    for (int q = 0; q < ran.p; ++q) c.max_abs_err = std::max(c.max_abs_err, std::abs(units.idle_share(q) - formula));
    c.max_rel_err = formula > 0 ? c.max_abs_err / formula : c.max_abs_err;
    c.tolerance = 1e-12;
    c.passed = c.max_rel_err <= c.tolerance;
    ctx.check(c);
  }
}

}  // namespace fivefold::ch04
