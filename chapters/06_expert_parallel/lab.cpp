// SPDX-License-Identifier: MIT
// What chapter 06's steps share: the grid's groups, batches, config, the serial references.
#include <cmath>

#include "chapters/06_expert_parallel/steps.hpp"
#include "nn/model.hpp"
#include "nn/train_step.hpp"

namespace fivefold::ch06 {

ModelConfig Options::default_config() {
  ModelConfig c;
  c.experts = 8;
  c.topk = 2;
  c.capacity_factor = 0.0;
  c.aux_coef = 0.01;
  c.moe_every = 1;
  c.layers = 2;
  c.seq = 16;
  c.steps = 3;
  return c;
}


Groups& groups(Context& ctx, Lab& lab, int ep, int dp) {
  auto it = lab.groups.find({ep, dp});
  if (it != lab.groups.end()) return it->second;
  AxisArray sizes{1, 1, ep, dp, 1};
  const ProcessGrid grid(sizes, lab.o.order, ctx.size());
  Groups g;
  g.comms = std::make_unique<GridComms>(ctx.world, grid,
                                        std::vector<AxisSet>{AxisSet{Axis::ep}, AxisSet{Axis::dp}, AxisSet{Axis::ep, Axis::dp}});
  return lab.groups.emplace(std::make_pair(ep, dp), std::move(g)).first->second;
}

nn::Batch batch_of_step(const ModelConfig& cfg, int k) {
  return nn::stream_batch(cfg, k);
}

nlohmann::json config_json(const Options& o) {
  nlohmann::json j = o.cfg.to_json();
  j["ep"] = o.ep;
  j["dp"] = o.dp;
  j["order"] = o.order;
  j["data"] = "stream";
  j["balance_steps"] = o.balance_steps;
  j["prompt"] = o.prompt;
  j["gen_tokens"] = o.gen_tokens;
  return j;
}

const SerialRun& serial(Context& ctx, Lab& lab, const ModelConfig& cfg) {
  const std::string key = cfg.to_json().dump();
  auto it = lab.serial.find(key);
  if (it != lab.serial.end()) return it->second;
  SerialRun run;
  static_cast<nn::ReferenceRun&>(run) =
      nn::train_reference(ctx.ops, cfg, [&](int k) { return batch_of_step(cfg, k); }, [&](int, nn::Model& model) {
        run.routing.emplace_back();  // TUTORIAL: the routing the exchanges' bytes are predicted from
        for (auto& layer : model.layers())
          if (layer.moe()) run.routing.back().push_back(layer.moe()->routing());
      });
  return lab.serial.emplace(key, std::move(run)).first->second;
}

}  // namespace fivefold::ch06
