// SPDX-License-Identifier: MIT
// One training step over any assembly, with its phases timed outside the algorithm.
#include "nn/train_step.hpp"

#include <chrono>

namespace fivefold::nn {

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

/// Adds the time since the last lap to a phase (after waiting for the device); the first step
/// of a run is a warm-up and is not counted.
class PhaseClock {
 public:
  PhaseClock(Ops& ops, StepTimes* times) : ops_(ops), times_(times), t_(now_s()) {
    if (times_) ++times_->calls;
  }
  void lap(double StepTimes::*phase) {
    if (!times_) return;
    ops_.synchronize();
    const double t1 = now_s();
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

double train_step(Decoder& model, Synchroniser& sync, const Batch& batch, StepTimes* times) {
  PhaseClock clock(model.ops(), times);
  sync.zero_grad();
  const UnitHooks hooks = sync.hooks();
  const double loss = model.forward(batch.inputs, batch.targets, hooks);  // TUTORIAL: the same on every layout
  clock.lap(&StepTimes::forward);
  model.backward(hooks);
  clock.lap(&StepTimes::backward);
  sync.finish();  // TUTORIAL: the gradient is the global batch's only after this
  clock.lap(&StepTimes::exposed_comm);
  sync.update();
  clock.lap(&StepTimes::update);
  return loss;
}

}  // namespace fivefold::nn
