// SPDX-License-Identifier: MIT
// One training run of a mode with its checks against the serial run, its communication
// against the formulas, its --dump (full tensors, gathered) and its section of the summary.
#include "chapters/01_reference_model/dump.hpp"
#include "chapters/03_tensor_parallel/tp_gather.hpp"
#include "chapters/05_sequence_parallel/steps.hpp"
#include "common/check.hpp"

namespace fivefold::ch05 {

namespace {

/// This rank's parameters against its block of the serial ones, merged into one check.
CheckResult compare_params(const std::string& name, SpModel& model, const std::map<std::string, Tensor>& ref,
                           double tol) {
  Communicator& g = model.group();
  CheckResult acc{name, 0, 0, tol, true};
  for (const nn::Param& p : model.params().all()) {
    const Tensor want = model.mode() == SpMode::megatron
                            ? ch03::block_of(ref.at(p.name), ch03::split_of(p.name), g.rank(), g.size())
                            : ref.at(p.name);
    merge(acc, compare(name, p.value, want, tol));
  }
  return acc;
}

/// The full logits [B, T, V] of the last forward, on rank 0 (collective, uncounted): under
/// megatron the vocabulary slices, otherwise every rank's positions put back in place.
Tensor full_logits(Context& ctx, SpModel& model) {
  const ModelConfig& cfg = model.config();
  Communicator& g = model.group();
  Uncounted quiet(g);
  const Tensor mine = model.logits().to(Device::host);
  if (model.mode() == SpMode::megatron) return ch03::gather_full(g, ctx.ops, model.logits(), ch03::Split::cols);
  const std::int64_t B = cfg.batch, T = cfg.seq, V = cfg.vocab, Tl = T / g.size();
  Tensor gathered = ctx.ops.empty({g.size() * B * Tl * V});
  g.all_gather(ctx.ops.upload(mine), gathered);
  const Tensor h = gathered.to(Device::host);
  Tensor out = Tensor::empty({B, T, V});
  const std::vector<std::int32_t> pos = gathered_positions(model.mode(), T, g.size());
  for (int r = 0; r < g.size(); ++r)
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < Tl; ++t)
        out.flat((b * T + pos[r * Tl + t]) * V, V).copy_from(h.flat(((r * B + b) * Tl + t) * V, V));
  return out;
}

/// A parameter set (values or grads) as full tensors into the dump (rank 0 writes).
void dump_params(Context& ctx, SpModel& model, const ch01::Dump& out, const std::string& sub, bool grads) {
  if (model.mode() == SpMode::megatron) {
    ch03::dump_full_params(model.group(), ctx.ops, static_cast<ch03::TpParams&>(model.params()),
                           ctx.rank() == 0 ? ctx.options.dump : "", sub, grads);
    return;
  }
  out.params(sub, model.params(), grads);  // replicated: rank 0's are everyone's
}

}  // namespace

ModeRun* train(Context& ctx, Lab& lab, SpMode mode, const std::string& idea) {
  const ModelConfig& cfg = lab.o.cfg;
  const std::string name = sp_mode_name(mode);
  if (!wants(lab, mode)) {
    ctx.narrator.say("(skipped: --sp-mode " + lab.o.mode + ")");
    return nullptr;
  }
  const int n = ctx.size();
  const std::string bad = check_layout(mode, cfg, n);
  if (!bad.empty()) {
    ctx.narrator.say("Skipped at this layout: " + bad + ".");
    return nullptr;
  }
  ctx.narrator.say(idea);
  const SerialRun& ref = serial(ctx, lab);
  Communicator& g = group(ctx, lab, mode);
  SpModel model(ctx.ops, g, cfg, mode);
  auto update = model.make_update(nn::AdamWConfig::from(cfg));
  const bool dump = !ctx.options.dump.empty() && dump_mode(lab) == mode;
  const ch01::Dump out(dump && ctx.rank() == 0 ? ctx.options.dump : "");
  if (dump) {
    if (out.enabled()) {
      nlohmann::json j = config_json(lab.o);
      j["backend"] = ctx.options.backend;
      j["sp_mode"] = name;
      out.config(j);
    }
    dump_params(ctx, model, out, "params", false);
  }
  ModeRun run;
  g.reset_counts();
  for (int k = 0; k < cfg.steps; ++k) {
    const nn::Batch batch = batch_of_step(lab.o, k);
    out.batch(k, batch);
    model.reset_ring_work();
    auto after_sync = [&] {
      if (k == 0 && dump) {
        const Tensor logits = full_logits(ctx, model);
        if (out.enabled()) out.tensor("logits", logits);
        dump_params(ctx, model, out, "grads", true);
      }
    };
    run.losses.push_back(model.step(*update, batch, after_sync));
    run.work = model.ring_work();
  }
  if (dump) {
    if (out.enabled()) out.losses(run.losses);
    dump_params(ctx, model, out, "final", false);
    ctx.narrator.say("--dump: wrote " + ctx.options.dump + " (full tensors, gathered on rank 0).");
  }

  ctx.check_losses("Loss per step: " + name + " vs serial", name, run.losses, ref.losses, 1e-5,
                   name + ": loss per step == serial");
  ctx.check(compare_params(name + ": parameters after " + std::to_string(cfg.steps) + " AdamW steps == serial", model,
                           ref.final, 1e-4));
  for (const auto& [op, want] : step_comm(mode, cfg, n))
    ctx.comm(Context::entry(g.name() + ":" + name, op, g.counts(), cfg.steps * want.calls,
                            cfg.steps * want.payload_bytes));
  Table t{name + ": what this rank handed to each collective per step (counted vs formula)",
          {"op", "calls", "bytes", "predicted calls", "predicted bytes"},
          {}};
  for (const auto& [op, want] : step_comm(mode, cfg, n)) {
    const OpCount got = g.counts().count(op) ? g.counts().at(op) : OpCount{};
    t.add({op, std::to_string(got.calls / cfg.steps), std::to_string(got.payload_bytes / cfg.steps),
           std::to_string(want.calls), std::to_string(want.payload_bytes)});
  }
  ctx.show(t);
  nlohmann::json& sec = ctx.summary.sections["sequence"][name];
  sec["sp"] = n;
  sec["losses"] = run.losses;
  sec["comm_per_step"] = nlohmann::json::object();
  for (const auto& [op, want] : step_comm(mode, cfg, n)) {
    const OpCount got = g.counts().count(op) ? g.counts().at(op) : OpCount{};
    sec["comm_per_step"][op] = {{"calls", got.calls / cfg.steps},
                                {"payload_bytes", got.payload_bytes / cfg.steps},
                                {"predicted_calls", want.calls},
                                {"predicted_payload_bytes", want.payload_bytes}};
  }
  lab.runs[name] = run;
  return &lab.runs[name];
}

}  // namespace fivefold::ch05
