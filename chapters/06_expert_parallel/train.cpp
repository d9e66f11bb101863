// SPDX-License-Identifier: MIT
// One expert-parallel training run with its checks against the serial run, its exchanges
// against the formula from the serial routing, and its --dump (full tensors, gathered).
#include "chapters/01_reference_model/dump.hpp"
#include "chapters/06_expert_parallel/steps.hpp"
#include "common/check.hpp"

namespace fivefold::ch06 {

namespace {

/// Every parameter of the model, full, on rank 0 of @p data (each expert sent by the first rank
/// holding it; dense weights are rank 0's). Collective, uncounted.
void dump_params(Groups& g, Ops& ops, nn::ParamRegistry& params, const ModelConfig& cfg, const ch01::Dump& out,
                 const std::string& sub, bool grads) {
  Communicator& data = g.data();
  Uncounted quiet(data);
  // Which data rank is ep rank j of dp copy 0 (it depends on --order).
  Tensor coords = ops.upload(Tensor::from_vector(std::vector<std::int32_t>{g.ep().rank(), g.dp().rank()}, {2}));
  Tensor all = ops.empty({2 * data.size()}, DType::i32);
  data.all_gather(coords, all);
  const Tensor h = all.to(Device::host);
  std::vector<int> holder(g.ep().size(), 0);
  for (int d = 0; d < data.size(); ++d)
    if (h.at<std::int32_t>(2 * d + 1) == 0) holder[h.at<std::int32_t>(2 * d)] = d;
  for (const nn::ParamSpec& spec : nn::model_param_specs(cfg)) {
    const int e = nn::expert_index(spec.name);
    // Dense weights: data rank 0's; expert e: ep rank e / (E/ep) of dp copy 0.
    const int owner_data = e < 0 ? 0 : holder[e / (cfg.experts / g.ep().size())];
    Tensor t;
    const bool mine = data.rank() == owner_data;
    if (mine) {
      const nn::Param& p = params.get(spec.name);
      t = grads ? p.grad : p.value;
      if (data.rank() != 0) data.send(t, 0);
    } else if (data.rank() == 0) {
      t = Tensor::empty(spec.shape, DType::f32, ops.device());
      data.recv(t, owner_data);
    }
    if (data.rank() == 0 && out.enabled()) out.tensor(sub + "/" + spec.name, t.to(Device::host));
  }
}

}  // namespace

EpRun train(Context& ctx, Lab& lab, const ModelConfig& cfg, int ep, int dp, const std::string& label, bool dump) {
  const SerialRun& ref = serial(ctx, lab, cfg);
  Groups& g = groups(ctx, lab, ep, dp);
  EpModel model(ctx.ops, g.ep(), g.dp(), g.data(), cfg);
  auto update = model.make_update(nn::AdamWConfig::from(cfg));
  const ch01::Dump out(dump && g.data().rank() == 0 ? ctx.options.dump : "");
  if (dump) {
    if (out.enabled()) {
      nlohmann::json j = config_json(lab.o);
      j["backend"] = ctx.options.backend;
      j["capacity_factor"] = cfg.capacity_factor;
      out.config(j);
    }
    dump_params(g, ctx.ops, model.params(), cfg, out, "params", false);
  }
  g.ep().reset_counts();
  g.dp().reset_counts();
  EpRun run;
  for (int k = 0; k < cfg.steps; ++k) {
    const nn::Batch batch = batch_of_step(cfg, k);
    out.batch(k, batch);
    auto after_sync = [&] {
      if (!(dump && k == 0)) return;
      const std::int64_t b = cfg.batch / g.data().size(), n = b * cfg.seq * cfg.vocab;
      Tensor all = ctx.ops.empty({g.data().size() * n});
      {
        Uncounted quiet(g.data());
        g.data().all_gather(model.logits(), all);  // data rank d holds sequences d*b..
      }
      if (out.enabled()) out.tensor("logits", all.to(Device::host).view({cfg.batch, cfg.seq, cfg.vocab}));
      dump_params(g, ctx.ops, model.params(), cfg, out, "grads", true);
    };
    run.losses.push_back(model.step(*update, batch, after_sync));
  }
  run.stats = model.stats();
  if (dump) {
    if (out.enabled()) out.losses(run.losses);
    dump_params(g, ctx.ops, model.params(), cfg, out, "final", false);
    ctx.narrator.say("--dump: wrote " + ctx.options.dump + " (full tensors, gathered on rank 0).");
  }

  ctx.check_losses("Loss per step: " + label + " vs serial", label, run.losses, ref.losses, 1e-5,
                   label + ": loss per step == serial");
  CheckResult params{label + ": parameters after " + std::to_string(cfg.steps) + " AdamW steps == serial (my experts)",
                     0, 0, 1e-4, true};
  for (const nn::Param& p : model.params().all()) merge(params, compare(params.name, p.value, ref.final.at(p.name), 1e-4));
  ctx.check(params);

  // The exchanges, from the serial run's routing of every step and MoE layer.
  const std::int64_t C = cfg.dim, T = cfg.seq, E = cfg.experts, b = cfg.batch / g.data().size();
  const int me = g.data().rank(), ep_c = g.ep().rank();
  std::vector<int> peers(ep);  // the data ranks of my ep group (what each one holds)
  {
    Uncounted quiet(g.ep());
    Tensor mine = ctx.ops.upload(Tensor::from_vector(std::vector<std::int32_t>{me}, {1}));
    Tensor all = ctx.ops.empty({ep}, DType::i32);
    g.ep().all_gather(mine, all);
    const Tensor h = all.to(Device::host);
    for (int j = 0; j < ep; ++j) peers[j] = h.at<std::int32_t>(j);
  }
  std::int64_t rows = 0, layers = 0;
  for (const auto& step : ref.routing)
    for (const nn::Routing& rt : step) {
      ++layers;
      for (std::int64_t v : rows_to(rt, T, me * b, b, ep)) rows += 2 * v;          // sent: forward and backward
      for (int j = 0; j < ep; ++j) rows += 2 * rows_to(rt, T, peers[j] * b, b, ep)[ep_c];  // returned
    }
  const std::string group = "ep:" + label;
  if (cfg.capacity_factor > 0) {
    const std::int64_t slots = b * nn::expert_capacity(cfg.capacity_factor, cfg.topk, T, static_cast<int>(E));
    ctx.comm(Context::entry(group, "all_to_all", g.ep().counts(), 4 * layers, 4 * layers * E * slots * C * 4));
  } else {
    ctx.comm(Context::entry(group, "all_to_all", g.ep().counts(), layers, layers * E * 4));
    ctx.comm(Context::entry(group, "all_to_allv", g.ep().counts(), 4 * layers, rows * C * 4));
  }
  nlohmann::json& sec = ctx.summary.sections["expert"][label];
  sec["ep"] = ep;
  sec["dp"] = dp;
  sec["capacity_factor"] = cfg.capacity_factor;
  sec["losses"] = run.losses;
  sec["ranks"] = nlohmann::json::array();
  for (const std::string& s : ctx.gather(std::to_string(run.stats.real_rows) + " " + std::to_string(run.stats.buffer_rows)))
    sec["ranks"].push_back(s);
  return run;
}

}  // namespace fivefold::ch06
