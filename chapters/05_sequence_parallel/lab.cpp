// SPDX-License-Identifier: MIT
// What chapter 05's steps share: the groups, batches, config, the serial reference.
#include "chapters/05_sequence_parallel/steps.hpp"

#include <cmath>

#include "nn/model.hpp"
#include "nn/train_step.hpp"

namespace fivefold::ch05 {

ModelConfig Options::default_config() {
  ModelConfig c;
  c.seq = 64;
  c.heads = 8;
  c.kv_heads = 4;
  c.layers = 4;
  c.steps = 3;
  return c;
}

Communicator& group(Context& ctx, Lab& lab, SpMode mode) {
  std::unique_ptr<Communicator>& g = mode == SpMode::megatron ? lab.tp : lab.sp;
  if (!g) g = ctx.world.split(0, ctx.rank(), mode == SpMode::megatron ? "tp" : "sp");
  return *g;
}

nn::Batch batch_of_step(const Options& o, int k) {
  return nn::stream_batch(o.cfg, k);
}

nlohmann::json config_json(const Options& o) {
  nlohmann::json j = o.cfg.to_json();
  j["sp"] = o.sp;
  j["tp"] = o.tp;
  j["sp_mode"] = o.mode.empty() ? "all" : o.mode;
  j["data"] = "stream";
  j["prompt"] = o.prompt;
  j["gen_tokens"] = o.gen_tokens;
  return j;
}

const SerialRun& serial(Context& ctx, Lab& lab) {
  if (lab.serial) return *lab.serial;
  lab.serial = nn::train_reference(ctx.ops, lab.o.cfg, [&](int k) { return batch_of_step(lab.o, k); });
  return *lab.serial;
}

bool wants(const Lab& lab, SpMode mode) { return lab.o.mode.empty() || parse_sp_mode(lab.o.mode) == mode; }

SpMode dump_mode(const Lab& lab) { return lab.o.mode.empty() ? SpMode::ring : parse_sp_mode(lab.o.mode); }

}  // namespace fivefold::ch05
