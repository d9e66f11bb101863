// SPDX-License-Identifier: MIT
// Step 4: training. One step = zero the gradients, forward + loss, backward, AdamW update
// (torch.optim.AdamW semantics: decoupled weight decay, bias-corrected moments). On the
// synthetic task the loss falls from ln V towards the noise's entropy within a few dozen steps.
// With --dump this step writes the NumPy dump (docs/reference.md, "The dump"; rank 0).
// Run: build/cpu/bin/ch01_reference_model --step 4 --steps 60
//      build/cpu/bin/ch01_reference_model --step 4 --steps 1 --dump /tmp/ch01 && python3 tests/ch01/check_dump.py /tmp/ch01
#include <algorithm>
#include <cmath>

#include "chapters/01_reference_model/dump.hpp"
#include "chapters/01_reference_model/steps.hpp"
#include "chapters/01_reference_model/traced_model.hpp"
#include "common/narrate.hpp"
#include "common/trace.hpp"

namespace fivefold::ch01 {

namespace {
/// The loss must end below this fraction of the step-0 loss (step 4's check), given at least
/// kMinSteps steps (with fewer, the chapter only narrates the losses).
constexpr double kFallRatio = 0.9;
constexpr int kMinSteps = 10;
}  // namespace

void train(Context& ctx, Lab& lab, bool narrate) {
  const Options& o = lab.o;
  const ModelConfig& cfg = o.cfg;
  Ops& ops = ctx.ops;
  auto model = std::make_unique<nn::Model>(ops, cfg);
  nn::ParamRegistry& reg = model->params();
  TracedModel traced(ops, reg, cfg);
  nn::AdamW adamw(ops, nn::AdamWConfig::from(cfg), reg);  // m and v: two more copies of every parameter
  const Dump dump(ctx.rank() == 0 ? ctx.options.dump : std::string());
  if (dump.enabled()) {
    nlohmann::json j = config_json(o);
    j["backend"] = ctx.options.backend;
    j["world_size"] = ctx.size();
    dump.config(j);
    dump.params("params", reg, false);
  }
  Table t{"Training (" + o.data + " data)", {"step", "loss", "cross-entropy", "aux", "||grad||"}, {}};
  std::vector<double> losses;
  const int every = std::max(1, cfg.steps / 10);
  // The dump needs a step-0 forward/backward even with --steps 0 (no update then).
  const int iters = std::max(cfg.steps, dump.enabled() ? 1 : 0);
  for (int k = 0; k < iters; ++k) {
    const nn::Batch batch = batch_of_step(o, k);
    model->zero_grad();
    const double loss = traced.forward(batch.inputs, batch.targets);
    traced.backward();
    double g2 = 0.0;
    for (const nn::Param& p : reg.all()) g2 += ops.sum_squares(p.grad);
    if (dump.enabled() && k == 0) {
      dump.tensor("inputs", batch.inputs);
      dump.tensor("targets", batch.targets);
      dump.tensor("logits", traced.logits());
      dump.params("grads", reg, true);
    }
    if (dump.enabled() && o.data == "stream") {
      dump.tensor("inputs_s" + std::to_string(k), batch.inputs);
      dump.tensor("targets_s" + std::to_string(k), batch.targets);
    }
    if (k >= cfg.steps) break;
    {
      TraceSpan span("adamw step", "compute");
      adamw.step();  // TUTORIAL: p -= lr*wd*p; m, v updated; p -= lr_t * m / (sqrt(v) + eps)
      ops.synchronize();
    }
    losses.push_back(loss);
    if (k < 3 || k % every == 0 || k == cfg.steps - 1)
      t.add({std::to_string(k), fmt("%.4f", loss), fmt("%.4f", traced.ce_loss()), fmt("%.4f", traced.aux_loss()),
             fmt("%.4f", std::sqrt(g2))});
  }
  if (dump.enabled()) {
    dump.losses(losses);
    dump.params("final", reg, false);
    ctx.narrator.say("Wrote the dump (docs/reference.md, 'The dump') to " + ctx.options.dump +
                     "; check it with python3 "
                     "tests/ch01/check_dump.py " + ctx.options.dump);
  }
  if (narrate) ctx.show(t);
  if (ctx.summary.loss.empty()) ctx.summary.loss = losses;
  lab.trained = std::move(model);
  lab.losses = losses;
}

void step4_training(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  ctx.narrator.say("AdamW, lr " + fmt("%g", cfg.lr) + ", betas (" + fmt("%g", cfg.beta1) + ", " +
                   fmt("%g", cfg.beta2) + "), eps " + fmt("%g", cfg.eps) + ", weight decay " +
                   fmt("%g", cfg.weight_decay) + "; " + std::to_string(cfg.steps) + " steps of " +
                   std::to_string(cfg.batch) + " x " + std::to_string(cfg.seq) + " tokens, " +
                   (lab.o.data == "stream" ? "a fresh batch every step (the loss measures generalisation)."
                                           : "the same batch every step (--data fixed)."));
  train(ctx, lab, true);
  const std::vector<double>& l = lab.losses;
  if (l.size() >= 2) {
    const std::size_t tail = std::min<std::size_t>(3, l.size() - 1);
    double last = 0.0;
    for (std::size_t i = l.size() - tail; i < l.size(); ++i) last += l[i] / static_cast<double>(tail);
    ctx.narrator.say("Loss " + fmt("%.4f", l.front()) + " -> " + fmt("%.4f", last) + " (mean of the last " +
                     std::to_string(tail) + " steps); the task's floor is " +
                     fmt("%.4f", nn::synthetic_entropy(cfg.vocab)) + " nats.");
    if (cfg.steps < kMinSteps) {
      ctx.narrator.say("(fewer than " + std::to_string(kMinSteps) + " steps: no check that the loss fell)");
    } else {
      CheckResult r;
      r.name = "loss fell: mean of the last steps < " + fmt("%.2f", kFallRatio) + " x step-0 loss";
      r.max_rel_err = last / l.front();  // the ratio; must stay below the tolerance
      r.max_abs_err = l.front() - last;
      r.tolerance = kFallRatio;
      r.passed = std::isfinite(last) && r.max_rel_err < kFallRatio;
      ctx.check(r);
    }
  } else {
    ctx.narrator.say("(fewer than 2 steps: nothing to compare the loss with)");
  }
  if (ctx.size() > 1) {
    std::vector<float> lf(l.begin(), l.end());
    check_ranks_agree(ctx, "parameters after training", flat_values(ctx.ops, lab.trained->params()));
    check_ranks_agree(ctx, "loss per step", Tensor::from_vector(lf, {static_cast<std::int64_t>(lf.size())}));
  }
}

}  // namespace fivefold::ch01
