// SPDX-License-Identifier: MIT
// Helpers the steps share: the batch of a step, flattened parameters, scalar checks, the
// cross-rank agreement check.
#include <cmath>
#include <limits>

#include "chapters/01_reference_model/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch01 {

nn::Batch batch_of_step(const Options& o, int k) {
  const std::int64_t first = o.data == "fixed" ? 0 : static_cast<std::int64_t>(k) * o.cfg.batch;
  return nn::synthetic_batch(o.cfg.seed, o.cfg.vocab, o.cfg.batch, o.cfg.seq, first);
}

nlohmann::json config_json(const Options& o) {
  nlohmann::json j = o.cfg.to_json();
  j["data"] = o.data;
  j["prompt"] = o.prompt;
  j["gen_tokens"] = o.gen_tokens;
  return j;
}

namespace {
Tensor concat(Ops& ops, const nn::ParamRegistry& reg, bool grads) {
  Tensor out = ops.empty({reg.numel()});  // [N]
  std::int64_t off = 0;
  for (const nn::Param& p : reg.all()) {
    const Tensor& t = grads ? p.grad : p.value;
    out.flat(off, t.numel()).copy_from(t);
    off += t.numel();
  }
  return out;
}
}  // namespace

Tensor flat_values(Ops& ops, const nn::ParamRegistry& reg) { return concat(ops, reg, false); }
Tensor flat_grads(Ops& ops, const nn::ParamRegistry& reg) { return concat(ops, reg, true); }

void check_number(Context& ctx, const std::string& name, double measured, double expected, double tolerance) {
  CheckResult r;
  r.name = name;
  r.max_abs_err = std::fabs(measured - expected);
  r.max_rel_err = expected != 0.0 ? r.max_abs_err / std::fabs(expected) : r.max_abs_err;
  if (!std::isfinite(measured)) r.max_abs_err = r.max_rel_err = std::numeric_limits<double>::infinity();
  r.tolerance = tolerance;
  r.passed = r.max_rel_err <= tolerance;
  ctx.check(r);
}

void check_ranks_agree(Context& ctx, const std::string& what, const Tensor& t) {
  if (ctx.size() == 1) return;  // same list of checks on every rank: size() is the same everywhere
  Tensor ref = ctx.ops.upload(t);  // a copy on the device (host tensors too: NCCL needs device memory)
  {
    Uncounted quiet(ctx.world);  // bookkeeping: the reference model itself communicates nothing
    ctx.world.broadcast(ref, 0);
  }
  ctx.check(compare("every rank == rank 0, bitwise: " + what, t, ref, 0.0));
}

}  // namespace fivefold::ch01
