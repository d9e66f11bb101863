// SPDX-License-Identifier: MIT
// What the steps share: the options as JSON, the batches, the serial reference run, small
// helpers, and which steps a plain run (--zero K) skips.
#include "chapters/02_data_parallel/steps.hpp"
#include "nn/adamw.hpp"
#include "nn/model.hpp"

namespace fivefold::ch02 {

nlohmann::json config_json(const Options& o, int dp) {
  nlohmann::json j = o.cfg.to_json();
  j["dp"] = dp;
  j["zero"] = o.zero;
  j["bucket_mb"] = o.bucket_mb;
  j["overlap"] = !o.no_overlap;
  j["prefetch"] = !o.no_prefetch;
  j["data"] = o.data;
  j["requests"] = o.requests;
  j["gen_tokens"] = o.gen_tokens;
  return j;
}

nn::Batch global_batch(const Options& o, int k) {
  const std::int64_t first = o.data == "fixed" ? 0 : static_cast<std::int64_t>(k) * o.cfg.batch;
  return nn::synthetic_batch(o.cfg.seed, o.cfg.vocab, o.cfg.batch, o.cfg.seq, first);
}

nn::Batch local_batch(const Options& o, int k, const BatchSplit& split, int r) {
  // TUTORIAL: the stream is deterministic per sequence, so rank r draws exactly its rows of the
  // global batch of step k (the same global batch whatever the number of ranks).
  const std::int64_t first = (o.data == "fixed" ? 0 : static_cast<std::int64_t>(k) * o.cfg.batch) + split.offset(r);
  return nn::synthetic_batch(o.cfg.seed, o.cfg.vocab, split.count(r), o.cfg.seq, first);
}

namespace {
Tensor dense(Ops& ops, nn::ParamRegistry& reg, bool grads) {
  Tensor out = ops.empty({reg.numel()});  // [Ψ] in registration order
  std::int64_t at = 0;
  for (const nn::Param& p : reg.all()) {
    const Tensor& t = grads ? p.grad : p.value;
    out.flat(at, t.numel()).copy_from(t);
    at += t.numel();
  }
  return out;
}
}  // namespace

const SerialRun& serial_run(Context& ctx, Lab& lab) {
  if (lab.serial) return *lab.serial;
  const ModelConfig& cfg = lab.o.cfg;
  nn::Model model(ctx.ops, cfg);
  nn::AdamW adamw(ctx.ops, nn::AdamWConfig::from(cfg), model.params());
  SerialRun run;
  for (int k = 0; k < cfg.steps; ++k) {
    const nn::Batch b = global_batch(lab.o, k);
    model.zero_grad();
    run.losses.push_back(model.forward(b.inputs, b.targets));
    model.backward();
    if (k == 0) run.grads0 = dense(ctx.ops, model.params(), true);
    adamw.step();
  }
  run.final = dense(ctx.ops, model.params(), false);
  lab.serial = std::move(run);
  return *lab.serial;
}

DpConfig dp_config(const Options& o, int zero) {
  DpConfig dc;
  dc.zero = zero;
  dc.bucket_mb = zero == 0 ? o.bucket_mb : 0.0;
  dc.overlap = !o.no_overlap;
  dc.prefetch = !o.no_prefetch;
  return dc;
}

int plain_run_step(const Options& o) {
  if (o.zero == 0) return o.bucket_mb > 0 ? 2 : 1;
  return o.zero + 2;  // ZeRO-1 -> step 3, ZeRO-2 -> step 4, ZeRO-3 -> step 5
}

bool skipped(Context& ctx, const Lab& lab, int k) {
  if (lab.o.zero < 0 || ctx.options.step != 0 || k == plain_run_step(lab.o)) return false;
  ctx.narrator.say("(skipped: --zero " + std::to_string(lab.o.zero) + " runs step " +
                   std::to_string(plain_run_step(lab.o)) + " only; drop --zero to run every step)");
  return true;
}

std::string wrap_schedule(const std::vector<std::string>& schedule, std::size_t width) {
  std::string out, line = " ";
  for (const std::string& s : schedule) {
    if (line.size() + 1 + s.size() > width) {
      out += line + "\n";
      line = " ";
    }
    line += " " + s;
  }
  return out + line;
}

}  // namespace fivefold::ch02
