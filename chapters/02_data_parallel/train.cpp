// SPDX-License-Identifier: MIT
// One data-parallel training run, the way every training step of the chapter uses it: split a
// communicator of its own (so its counters hold exactly this run), train cfg.steps steps on the
// ranks' slices of the global batches, then check it against the serial run (losses, step-0
// gradients per tensor, final parameters per tensor), against the first run of the process
// (the stages agree), its memory against the exact formula, its communication against the
// predicted counts; and write --dump if it is the first run.
#include <cmath>
#include <limits>

#include "chapters/02_data_parallel/dp_costs.hpp"
#include "chapters/02_data_parallel/dump.hpp"
#include "chapters/02_data_parallel/steps.hpp"

namespace fivefold::ch02 {

namespace {

/// Relative tolerances (docs/reference.md, "Tolerances"): one forward/backward, and after a few
/// optimizer steps.
constexpr double kTolOneStep = 1e-5;
constexpr double kTolSteps = 1e-4;

/// Compares two dense [Ψ] parameter vectors tensor by tensor (worst relative error over tensors).
CheckResult compare_params(const std::string& name, const ModelConfig& cfg, const Tensor& ours, const Tensor& ref,
                           double tol) {
  CheckResult acc;
  acc.name = name;
  acc.tolerance = tol;
  acc.passed = ours.numel() == ref.numel();
  if (!acc.passed) {
    acc.max_abs_err = acc.max_rel_err = std::numeric_limits<double>::infinity();
    return acc;
  }
  std::int64_t at = 0;
  for (const nn::ParamSpec& p : nn::model_param_specs(cfg)) {
    const std::int64_t len = shape_numel(p.shape);
    merge(acc, compare(name, ours.flat(at, len), ref.flat(at, len), tol));
    at += len;
  }
  return acc;
}

/// sum over ranks of @p v (uncounted bookkeeping on @p comm).
double sum_over(Ops& ops, Communicator& comm, double v) {
  Tensor t = ops.upload(Tensor::from_vector(std::vector<float>{static_cast<float>(v)}, {1}));
  {
    Uncounted quiet(comm);
    comm.all_reduce(t);
  }
  return t.to_vector()[0];
}

}  // namespace

RunResult train_dp(Context& ctx, Lab& lab, const DpConfig& dc, const std::string& name) {
  const Options& o = lab.o;
  const ModelConfig& cfg = o.cfg;
  const SerialRun& ref = serial_run(ctx, lab);
  std::unique_ptr<Communicator> comm = ctx.world.split(0, ctx.rank(), "dp/" + name);
  const int n = comm->size(), r = comm->rank();
  const BatchSplit split{cfg.batch, n};
  const std::unique_ptr<DpTrainer> made = DpTrainer::make(ctx.ops, *comm, cfg, dc);
  DpTrainer& trainer = *made;
  DpDump dump(ctx, lab, *comm, dc, name);
  dump.begin();
  RunResult res;
  res.group = comm->name();
  for (int k = 0; k < cfg.steps; ++k) {
    const nn::Batch local = local_batch(o, k, split, r);
    const double loss = trainer.step(local, split.weight(r));
    // TUTORIAL: the global mean loss = sum over ranks of (b_r/B) * (this rank's mean).
    res.losses.push_back(sum_over(ctx.ops, *comm, split.weight(r) * loss));
    dump.batch(k);
    if (k == 0) {
      const Tensor g = trainer.dense_grads();
      ctx.check(compare_params("step-0 gradients vs serial (" + name + ")", cfg, g, ref.grads0, kTolOneStep));
      dump.step0(trainer.logits(), g);
    }
  }
  const Tensor final = trainer.dense_params();
  dump.end(res.losses, final);
  CheckResult lc = compare_values("losses vs serial (" + name + ")", res.losses, ref.losses, kTolOneStep);
  ctx.check(lc);
  ctx.check(compare_params("parameters after " + std::to_string(cfg.steps) + " steps vs serial (" + name + ")", cfg,
                           final, ref.final, kTolSteps));
  if (lab.first_final.defined()) {
    ctx.check(compare_params("parameters: " + name + " vs " + lab.first_name, cfg, final, lab.first_final, kTolSteps));
  } else {
    lab.first_final = final;
    lab.first_name = name;
  }
  // Memory: what the trainer allocated, tensor by tensor, vs the exact formula of dp_costs.
  res.memory = trainer.memory();
  const MemoryBytes want = exact_memory(dc, trainer.layout());
  const std::vector<float> got_v{float(res.memory.params), float(res.memory.grads), float(res.memory.optimizer),
                                 float(res.memory.buffers)};
  const std::vector<float> want_v{float(want.params), float(want.grads), float(want.optimizer), float(want.buffers)};
  ctx.check(compare("memory per rank == exact formula (" + name + ")", Tensor::from_vector(got_v, {4}),
                    Tensor::from_vector(want_v, {4}), 0.0));
  // Communication: every op counted vs predicted; an op nobody predicted shows up as a mismatch.
  res.counts = comm->counts();
  res.buckets = static_cast<int>(trainer.buckets().size());
  const int nparams = static_cast<int>(nn::model_param_specs(cfg).size());
  const std::vector<OpPrediction> pred = predicted_comm(dc, trainer.layout(), res.buckets, nparams, cfg.steps);
  for (const OpPrediction& p : pred) ctx.comm(Context::entry(res.group, p.op, res.counts, p.calls, p.payload_bytes));
  for (const auto& [op, c] : res.counts) {
    bool known = false;
    for (const OpPrediction& p : pred) known = known || p.op == op;
    if (!known) ctx.comm(Context::entry(res.group, op, res.counts, 0, 0));
  }
  res.times = trainer.times();
  res.schedule = trainer.schedule();
  // The summary's memory: the last run's bytes per rank (parameters; everything it held).
  const std::vector<std::string> all = ctx.gather(std::to_string(res.memory.params) + " " +
                                                  std::to_string(res.memory.total()));
  ctx.summary.param_bytes_per_rank.clear();
  ctx.summary.peak_bytes_per_rank.clear();
  for (const std::string& line : all) {
    const auto sp = line.find(' ');
    ctx.summary.param_bytes_per_rank.push_back(std::stoll(line.substr(0, sp)));
    ctx.summary.peak_bytes_per_rank.push_back(std::stoll(line.substr(sp + 1)));
  }
  ctx.summary.loss = res.losses;
  return res;
}

}  // namespace fivefold::ch02
