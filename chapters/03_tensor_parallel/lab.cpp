// SPDX-License-Identifier: MIT
// What chapter 03's steps share: the TP group, batches, config, random inputs, checks, records.
#include "chapters/03_tensor_parallel/steps.hpp"

#include "chapters/03_tensor_parallel/tp_gather.hpp"
#include "common/rng.hpp"

namespace fivefold::ch03 {

ModelConfig Options::default_config() {
  ModelConfig c;
  c.heads = 8;
  c.kv_heads = 4;
  c.steps = 6;
  return c;
}

Communicator& tp_group(Context& ctx, Lab& lab) {
  if (!lab.tp) {
    const int tp = lab.o.tp, r = ctx.rank();
    lab.tp = ctx.world.split(r / tp, r, "tp");  // TUTORIAL: neighbouring ranks: TP stays inside a node
  }
  return *lab.tp;
}

nn::Batch batch_of_step(const Options& o, int k) {
  const std::int64_t first = o.data == "fixed" ? 0 : static_cast<std::int64_t>(k) * o.cfg.batch;
  return nn::synthetic_batch(o.cfg.seed, o.cfg.vocab, o.cfg.batch, o.cfg.seq, first);
}

nlohmann::json config_json(const Options& o, int world_size) {
  nlohmann::json j = o.cfg.to_json();
  j["tp"] = o.tp;
  j["dp"] = world_size / o.tp;  // replicas of the TP group (same data: they only repeat the run)
  j["data"] = o.data;
  j["prompt"] = o.prompt;
  j["gen_tokens"] = o.gen_tokens;
  return j;
}

Tensor random_tensor(Ops& ops, const Options& o, const std::string& name, const Shape& shape) {
  return ops.upload(rng::draw(o.cfg.seed, "ch03." + name, shape, rng::Dist::normal, 0.0f, 1.0f));
}

CommEntry record(Context& ctx, const CommCounts& counted, int tp_size, const std::string& label, const std::string& op,
                 const CommCost& predicted) {
  const CommEntry e = Context::entry("tp:" + label, op, counted, predicted.calls, predicted.bytes);
  // A ring all-reduce sends 2(n-1)/n of the buffer; a ring all-gather forwards n-1 blocks of the payload.
  const double payload = static_cast<double>(e.payload_bytes);
  const double wire = op == "all_gather" ? (tp_size - 1) * payload : ring_wire_bytes(payload, tp_size);
  ctx.comm(e);
  ctx.narrator.say("  comm " + label + ": " + std::to_string(e.calls) + " " + op + " (predicted " +
                   std::to_string(predicted.calls) + "), " + std::to_string(e.payload_bytes) + " bytes (predicted " +
                   std::to_string(predicted.bytes) + "); each rank sends " + human_bytes(wire) +
                   " over its link in a ring -> " + (e.matches() ? "matches" : "MISMATCH"));
  return e;
}

std::string shape_of(const Tensor& t) { return shape_str(t.shape()); }

}  // namespace fivefold::ch03
