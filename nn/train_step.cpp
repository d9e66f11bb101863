// SPDX-License-Identifier: MIT
// One training step over any assembly, with its phases timed outside the algorithm.
#include "nn/train_step.hpp"

#include "common/check.hpp"
#include "common/clock.hpp"

namespace fivefold::nn {

namespace {

/// Adds the time since the last lap to a phase (after waiting for the device); the first step
/// of a run is a warm-up and is not counted.
class PhaseClock {
 public:
  PhaseClock(Ops& ops, StepTimes* times) : ops_(ops), times_(times), t_(now_seconds()) {
    if (times_) ++times_->calls;
  }
  void lap(double StepTimes::*phase) {
    if (!times_) return;
    ops_.synchronize();
    const double t1 = now_seconds();
    if (times_->calls > 1) times_->*phase += t1 - t_;
    t_ = t1;
  }
  ~PhaseClock() {
    if (times_ && times_->calls > 1) ++times_->steps;
  }

 private:
  Ops& ops_;
  StepTimes* times_;
  double t_;
};

}  // namespace

SummedUpdate::SummedUpdate(Ops& ops, ParamRegistry& params, const AdamWConfig& cfg,
                           std::vector<std::pair<unsigned, Communicator*>> groups)
    : ops_(&ops), params_(&params), opt_(ops, cfg, params), groups_(std::move(groups)) {}

std::int64_t SummedUpdate::bytes(unsigned axis) const {
  std::int64_t n = 0;
  for (const auto& [bit, comm] : groups_)
    if (bit == axis && comm->size() > 1)
      for (const Param& p : params_->all())
        if (p.sum_axes & bit) n += p.grad.numel();
  return n * 4;
}

void SummedUpdate::finish() {
  for (const auto& [bit, comm] : groups_) {
    if (comm->size() == 1) continue;
    const std::int64_t n = bytes(bit) / 4;
    if (n == 0) continue;
    if (!flat_.defined() || flat_.numel() < n) flat_ = ops_->empty({n});
    Tensor buf = flat_.flat(0, n);
    std::int64_t at = 0;  // TUTORIAL: pack, one all-reduce (sum) over the group, unpack
    for (const Param& p : params_->all())
      if (p.sum_axes & bit) {
        buf.flat(at, p.grad.numel()).copy_from(p.grad.flat(0, p.grad.numel()));
        at += p.grad.numel();
      }
    comm->all_reduce(buf);
    at = 0;
    for (Param& p : params_->all())
      if (p.sum_axes & bit) {
        Tensor g = p.grad.flat(0, p.grad.numel());
        g.copy_from(buf.flat(at, p.grad.numel()));
        at += p.grad.numel();
      }
  }
}

double train_step(Decoder& model, Synchroniser& sync, const Batch& batch, StepTimes* times) {
  return train_step(model, sync, std::vector<Batch>{batch}, times);
}

double train_step(Decoder& model, Synchroniser& sync, const std::vector<Batch>& microbatches, StepTimes* times) {
  FIVEFOLD_CHECK(!microbatches.empty(), "train_step: no microbatch to train on");
  const std::size_t m = microbatches.size();
  std::int64_t rows = 0;
  for (const Batch& b : microbatches) {
    FIVEFOLD_CHECK(b.inputs.ndim() == 2 && b.inputs.dim(1) == microbatches[0].inputs.dim(1), "train_step: microbatch ",
                   b.inputs.str(), " must have the first one's sequence length ", microbatches[0].inputs.str());
    rows += b.inputs.dim(0);
  }
  PhaseClock clock(model.ops(), times);
  sync.zero_grad();
  double loss = 0.0;
  for (std::size_t k = 0; k < m; ++k) {
    const Batch& b = microbatches[k];
    const UnitHooks hooks = sync.hooks(/*last=*/k + 1 == m);
    // TUTORIAL: one microbatch is the whole step's mean as it is; several are shares of it: the
    // cross-entropy's gradient is scaled by 1/(all the step's tokens), the aux loss by b_k/b.
    const double share = static_cast<double>(b.inputs.dim(0)) / static_cast<double>(rows);
    const double loss_scale = m == 1 ? 0.0 : 1.0 / static_cast<double>(rows * b.inputs.dim(1));
    loss += share * model.forward(b.inputs, b.targets, hooks, loss_scale, m == 1 ? 1.0 : share);
    clock.lap(&StepTimes::forward);
    model.backward(hooks);  // the gradients accumulate over the microbatches
    clock.lap(&StepTimes::backward);
  }
  sync.finish();  // TUTORIAL: the gradient is the global batch's only after this
  clock.lap(&StepTimes::exposed_comm);
  sync.update();
  clock.lap(&StepTimes::update);
  return loss;
}

}  // namespace fivefold::nn
