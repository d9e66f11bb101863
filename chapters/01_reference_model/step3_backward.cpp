// SPDX-License-Identifier: MIT
// Step 3: the loss and the backward. The mean cross-entropy at initialisation is about ln V
// (near-uniform logits); the hand-written backward runs the blocks in reverse; three checks:
// TracedModel's gradients equal nn::Model's (exact), RMSNorm's backward written as loops equals
// the backend's, and a few gradient entries equal central finite differences of the loss.
// The thorough gradient checks (double precision, every layer) are tests/nn's; this one is a
// spot check in fp32, with the tolerance explained below.
// Run: build/cpu/bin/ch01_reference_model --step 3
#include <algorithm>
#include <cmath>

#include "chapters/01_reference_model/rmsnorm_by_hand.hpp"
#include "chapters/01_reference_model/steps.hpp"
#include "chapters/01_reference_model/traced_model.hpp"
#include "common/narrate.hpp"
#include "common/rng.hpp"

namespace fivefold::ch01 {

namespace {

/// Finite-difference steps tried, largest first, the loss's rounding noise, and the tolerance
/// (see check_finite_differences).
constexpr float kSteps[] = {1e-2f, 3e-3f, 1e-3f, 3e-4f, 1e-4f};
constexpr double kLossNoise = 1e-7;
constexpr double kTolerance = 5e-2;

/// The parameters probed: one of each kind, in the first and the last layer.
std::vector<std::string> probes(const ModelConfig& cfg) {
  std::vector<std::string> out = {"embed_tokens.weight"};
  for (int l : {0, cfg.layers - 1}) {
    const std::string p = "layers." + std::to_string(l) + ".";
    out.push_back(p + "input_layernorm.weight");
    out.push_back(p + "self_attn.q_proj.weight");
    out.push_back(p + "self_attn.v_proj.weight");
    if (cfg.is_moe_layer(l)) {
      out.push_back(p + "moe.router.weight");
      out.push_back(p + "moe.experts.0.down_proj.weight");
    } else {
      out.push_back(p + "mlp.up_proj.weight");
    }
    if (cfg.layers == 1) break;
  }
  out.push_back("norm.weight");
  out.push_back("lm_head.weight");
  return out;
}

void set_entry(Tensor& t, std::int64_t i, float value) {
  t.flat(i, 1).copy_from(Tensor::from_vector(std::vector<float>{value}, {1}));
}

/// The routing decisions of every MoE layer in the last forward (empty for a dense model).
std::vector<std::int32_t> routing_of(TracedModel& traced) {
  std::vector<std::int32_t> out;
  for (nn::DecoderLayer& layer : traced.layers()) {
    if (!layer.moe()) continue;
    const nn::Routing& r = layer.moe()->routing();
    out.insert(out.end(), r.choice.begin(), r.choice.end());
    out.insert(out.end(), r.kept.begin(), r.kept.end());
  }
  return out;
}

void check_finite_differences(Context& ctx, TracedModel& traced, nn::ParamRegistry& reg, const nn::Batch& batch) {
  ctx.narrator.say(
      "Finite differences: for the largest-gradient entry w of a few tensors, fd = (L(w+h) - L(w-h)) / 2h.\n"
      "The fp32 loss carries rounding noise e (~1e-8..1e-7: per-token losses rounded to fp32, averaged), which "
      "puts an\nerror of ~e/h into fd, while the central difference itself errs by ~h^2 L'''/6; h = 1e-2 "
      "balances the two for weights\nof scale 0.02. We probe the largest entries and measure |fd - g| / (|g| + " +
      fmt("%g", kLossNoise) + "/h), allowing " + fmt("%g", kTolerance) + ": a wrong\nbackward is off by O(1) "
      "(a sign, a factor 2, a missing term), not by a few percent." +
      (traced.config().experts > 0
           ? "\nMoE: the loss jumps where a token's top-k or capacity decision flips, and there is no derivative "
             "across a jump.\nSo h shrinks (1e-2, 3e-3, ..., 1e-4) until no routing decision differs between w-h, w and "
             "w+h; a probe whose\nrouting flips even at 1e-4 is skipped."
           : std::string()));
  traced.forward(batch.inputs, batch.targets);
  const std::vector<std::int32_t> routing = routing_of(traced);
  Table t{"Gradient spot check", {"parameter", "entry", "h", "backward", "finite difference", "rel err"}, {}};
  CheckResult all;
  all.name = "gradient == central finite difference (largest entries, fp32)";
  all.tolerance = kTolerance;
  all.passed = true;
  int tested = 0;
  for (const std::string& name : probes(traced.config())) {
    nn::Param& p = reg.get(name);
    const std::vector<float> g = p.grad.to_vector();
    const std::int64_t i =
        std::max_element(g.begin(), g.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }) - g.begin();
    const float w = p.value.flat(i, 1).to_vector()[0];
    bool done = false;
    for (const float h : kSteps) {
      set_entry(p.value, i, w + h);
      const double up = traced.forward(batch.inputs, batch.targets);
      const bool same_up = routing_of(traced) == routing;
      set_entry(p.value, i, w - h);
      const double down = traced.forward(batch.inputs, batch.targets);
      const bool same_down = routing_of(traced) == routing;
      set_entry(p.value, i, w);  // restore
      if (!same_up || !same_down) continue;  // a routing decision flipped: no derivative across it
      const double fd = (up - down) / (2.0 * h);
      const double err = std::fabs(fd - g[i]) / (std::fabs(g[i]) + kLossNoise / h);
      t.add({name, std::to_string(i), fmt("%g", h), fmt("%.6g", g[i]), fmt("%.6g", fd), fmt("%.2g", err)});
      CheckResult one;
      one.max_abs_err = std::fabs(fd - g[i]);
      one.max_rel_err = err;
      one.passed = err <= kTolerance;
      merge(all, one);
      done = true;
      ++tested;
      break;
    }
    if (!done) t.add({name, std::to_string(i), "-", fmt("%.6g", g[i]), "skipped: routing flips", "-"});
  }
  ctx.show(t);
  if (tested < 3) all.passed = false;  // a check that tested (almost) nothing proves nothing
  ctx.check(all);
}

/// RMSNorm's backward written as loops (rmsnorm_by_hand.cpp) against the backend's.
void check_rmsnorm_by_hand(Context& ctx, const ModelConfig& cfg) {
  const std::int64_t n = 37, c = cfg.dim;
  const float eps = static_cast<float>(cfg.norm_eps);
  const Tensor x = rng::draw(cfg.seed, "ch01.rms.x", {n, c}, rng::Dist::normal, 0.0f, 1.0f);
  const Tensor w = rng::draw(cfg.seed, "ch01.rms.w", {c}, rng::Dist::normal, 1.0f, 0.1f);
  const Tensor dy = rng::draw(cfg.seed, "ch01.rms.dy", {n, c}, rng::Dist::normal, 0.0f, 1.0f);
  std::vector<float> y, rstd, dx, dw(static_cast<std::size_t>(c), 0.0f);
  rmsnorm_forward_by_hand(x.to_vector(), w.to_vector(), n, c, eps, y, rstd);
  rmsnorm_backward_by_hand(x.to_vector(), w.to_vector(), rstd, dy.to_vector(), n, c, dx, dw);
  Ops& ops = ctx.ops;
  Tensor dx_ref = ops.empty({n, c}), dw_ref = ops.zeros({c}), y_ref = ops.empty({n, c}), rstd_ref = ops.empty({n});
  const Tensor xd = ops.upload(x), wd = ops.upload(w), dyd = ops.upload(dy);
  ops.rmsnorm_forward(y_ref, rstd_ref, xd, wd, eps);
  ops.rmsnorm_backward(dx_ref, dw_ref, dyd, xd, wd, rstd_ref);
  CheckResult r = compare("RMSNorm backward by hand == Ops::rmsnorm_backward (dx, dw)",
                          Tensor::from_vector(dx, {n, c}), dx_ref, 1e-5);
  merge(r, compare("", Tensor::from_vector(dw, {c}), dw_ref, 1e-5));
  ctx.check(r);
}

}  // namespace

void step3_backward(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  Ops& ops = ctx.ops;
  nn::Model model(ops, cfg);
  nn::ParamRegistry& reg = model.params();
  TracedModel traced(ops, reg, cfg);
  const nn::Batch batch = batch_of_step(lab.o, 0);

  const double loss = traced.forward(batch.inputs, batch.targets);
  const double lnv = std::log(static_cast<double>(cfg.vocab));
  ctx.narrator.say(
      "loss = mean over the " + std::to_string(cfg.batch * cfg.seq) + " tokens of logsumexp(logits) - "
      "logits[target] = " + fmt("%.5f", traced.ce_loss()) +
      (cfg.experts > 0 ? " (+ aux " + fmt("%.5f", traced.aux_loss()) + " = " + fmt("%.5f", loss) + ")" : "") +
      ".\nAt initialisation the logits are nearly equal (std ~ 0.02 sqrt(C)), so softmax is nearly uniform and "
      "the loss is near ln V = " + fmt("%.5f", lnv) + ".");
  check_number(ctx, "step-0 cross-entropy ~= ln V (within 5%)", traced.ce_loss(), lnv, 0.05);

  // TUTORIAL: backward = the forward's blocks in reverse, each turning d loss/d output into
  // d loss/d input and accumulating its weights' gradients.
  traced.log_shapes(true);
  traced.backward();
  Table t{"The backward, block by block", {"gradient", "shape"}, {}};
  for (const ShapeRow& r : traced.shape_log()) t.add({r.what, shape_str(r.shape)});
  ctx.show(t);
  traced.log_shapes(false);
  const Tensor grads = flat_grads(ops, reg);  // [N]
  ctx.narrator.say("||grad||_2 over all " + std::to_string(grads.numel()) + " parameters = " +
                   fmt("%.5g", std::sqrt(ops.sum_squares(grads))) + ".");

  model.zero_grad();
  model.forward(batch.inputs, batch.targets);
  model.backward();
  ctx.check(compare("TracedModel grads == nn::Model grads (exact)", grads, flat_grads(ops, reg), 0.0));
  check_ranks_agree(ctx, "step-0 gradients", grads);

  check_rmsnorm_by_hand(ctx, cfg);
  check_finite_differences(ctx, traced, reg, batch);
}

}  // namespace fivefold::ch01
