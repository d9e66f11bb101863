// SPDX-License-Identifier: MIT
// ZeRO-1 (one reduce-scatter of the whole gradient after the backward, the update of the own
// slice, one all-gather) and ZeRO-2 (a reduce-scatter per unit during the backward).
#include "chapters/02_data_parallel/zero.hpp"

#include "common/check.hpp"

namespace fivefold::ch02 {

void zero1_update(Communicator& comm, Tensor& params, const Tensor& grads, Tensor& grad_shard, Tensor& send,
                  nn::AdamW& opt) {
  const std::int64_t s = grad_shard.numel();
  FIVEFOLD_CHECK(grads.numel() == s * comm.size() && params.numel() == grads.numel() && send.numel() == s,
                 "zero1_update: params ", params.str(), ", grads ", grads.str(), ", grad_shard ", grad_shard.str(),
                 " and send ", send.str(), " must be [padded], [padded], [padded/n], [padded/n]");
  // TUTORIAL: ZeRO-1: block r of the summed gradient lands on rank r; the rest is never needed.
  comm.reduce_scatter(grads, grad_shard);  // [padded] -> [padded / n]
  opt.step();  // AdamW on this rank's slice only (its m and v are [padded / n])
  // Every rank updated only its slice; the all-gather rebuilds the replica. The slice is copied
  // out first: the input of a collective must not alias its output.
  send.copy_from(params.flat(comm.rank() * s, s));
  comm.all_gather(send, params);
}

Zero1::Zero1(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc)
    : DpTrainer(ops, comm, cfg, dc, FlatLayout(model_units(cfg), comm.size(), false)) {
  const int U = layout_.num_units();
  std::vector<Tensor> values(U), grads(U);
  params_ = alloc(layout_.padded(), mem_.params);
  params_.copy_from(layout_.init_full(cfg.seed));
  grads_ = alloc(layout_.padded(), mem_.grads);
  for (int u = 0; u < U; ++u) {
    values[u] = params_.flat(layout_.offset(u), layout_.unit(u).numel);
    grads[u] = grads_.flat(layout_.offset(u), layout_.unit(u).numel);
  }
  grad_shard_ = alloc(layout_.shard(), mem_.grads);  // TUTORIAL: this rank's 1/n of the gradient
  send_ = alloc(layout_.shard(), mem_.buffers);
  for (const Segment& g : layout_.segments())  // the optimizer sees only the owned slice
    add_to_optimizer(params_.flat(g.offset + r_ * g.shard(n_), g.shard(n_)), grad_shard_.flat(g.shard_offset, g.shard(n_)));
  build_model(values, grads);
}

nn::UnitHooks Zero1::hooks(bool last) {
  nn::UnitHooks h;
  if (!last) return h;  // an earlier microbatch: its gradients only accumulate in grads_
  h.before_forward = [this](int u) { note("fwd", u); };
  h.before_backward = [this](int u) { note("bwd", u); };
  h.after_backward = [this](int u) {
    Tensor g = grads_.flat(layout_.offset(u), layout_.unit(u).numel);
    weigh(g);
  };
  return h;
}

void Zero1::update() {
  note("RS(all)", -1);
  note("Adam(slice)", -1);
  note("AG(all)", -1);
  zero1_update(*comm_, params_, grads_, grad_shard_, send_, *opt_);  // the three, in this order
}

Zero2::Zero2(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc, bool)
    // one segment per unit: a unit is reduce-scattered (and, in ZeRO-3, gathered) alone
    : DpTrainer(ops, comm, cfg, dc, FlatLayout(model_units(cfg), comm.size(), true)) {
  grad_shard_ = alloc(layout_.shard(), mem_.grads);  // TUTORIAL: this rank's 1/n of the gradient
  for (int k = 0; k < (dc.overlap ? 2 : 1); ++k) gws_[k] = alloc(layout_.max_padded(), mem_.buffers);
}

Zero2::Zero2(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc)
    : Zero2(ops, comm, cfg, dc, true) {
  const int U = layout_.num_units();
  std::vector<Tensor> values(U), grads(U);
  params_ = alloc(layout_.padded(), mem_.params);
  params_.copy_from(layout_.init_full(cfg.seed));
  for (int u = 0; u < U; ++u) {
    values[u] = params_.flat(layout_.offset(u), layout_.unit(u).numel);
    grads[u] = unit_grads(u);
  }
  send_ = alloc(layout_.shard(), mem_.buffers);
  for (const Segment& g : layout_.segments())  // the optimizer sees only the owned slice of each segment
    add_to_optimizer(params_.flat(g.offset + r_ * g.shard(n_), g.shard(n_)), grad_shard_.flat(g.shard_offset, g.shard(n_)));
  build_model(values, grads);
}

nn::UnitHooks Zero2::hooks(bool last) {
  refuse_microbatches(last);
  nn::UnitHooks h;
  h.before_forward = [this](int u) { note("fwd", u); };
  h.before_backward = [this](int u) {
    ready_workspace(u);
    progress();
    note("bwd", u);
  };
  h.after_backward = [this](int u) {
    Tensor g = unit_grads(u);
    weigh(g);
    reduce_unit(u);
  };
  return h;
}

void Zero2::refuse_microbatches(bool last) {
  // A unit's full gradient lives in a workspace only during its backward: there is nothing to
  // accumulate a second microbatch into (that would need a gradient shard accumulated per
  // microbatch, i.e. a reduce-scatter per microbatch).
  FIVEFOLD_USAGE_CHECK(last, "ZeRO-", dc_.zero, " reduce-scatters each unit's gradient during the backward; ",
                       "it takes one microbatch per step here (use ZeRO-0 or ZeRO-1 to accumulate microbatches)");
}

void Zero2::ready_workspace(int u) {
  complete(reduces_[gslot_of(u)]);  // this workspace's previous reduce-scatter must be done
  Tensor g = gws_[gslot_of(u)].flat(0, layout_.segment_of(u).padded);
  ops_->fill(g, 0.0f);  // the padding too: it is summed by the reduce-scatter
}

void Zero2::reduce_unit(int u) {
  const Segment& g = layout_.segment_of(u);
  const int k = gslot_of(u);
  const Tensor full = gws_[k].flat(0, g.padded);                // [padded_u], this rank's (scaled) gradient
  Tensor mine = grad_shard_.flat(g.shard_offset, g.shard(n_));  // [padded_u / n]
  // TUTORIAL: ZeRO-2/3: reduce-scatter the unit right after its backward, while the next unit's
  // backward runs (it writes the OTHER workspace); the unit's full gradient is then dropped.
  if (dc_.overlap) {
    launch(reduces_[k], comm_->ireduce_scatter(full, mine), "reduce_scatter " + layout_.unit(u).name);
  } else {
    comm_->reduce_scatter(full, mine);
  }
  note("RS", u);
}

void Zero2::progress() {
  // TUTORIAL: MPI moves a non-blocking collective forward only inside MPI calls (no progress
  // thread), so we test the calls in flight between units: each test() is such a call.
  for (InFlight& f : reduces_) poll(f);
}

void Zero2::finish() {
  if (dc_.overlap) note("wait", -1);
  for (InFlight& f : reduces_) complete(f);  // the last reduce-scatters
}

void Zero2::update() {
  note("Adam(slice)", -1);
  opt_->step();  // TUTORIAL: AdamW is elementwise: a shard's update equals that slice of the full one
  all_gather_params();
}

void Zero2::all_gather_params() {
  // TUTORIAL: ZeRO-1/2: every rank updated only its slice; the all-gather rebuilds the replica.
  // The owned slice is copied out first: the input of a collective must not alias its output.
  note("AG(each unit)", -1);
  for (const Segment& g : layout_.segments()) {
    const std::int64_t s = g.shard(n_);
    Tensor mine = send_.flat(g.shard_offset, s);
    mine.copy_from(params_.flat(g.offset + r_ * s, s));
    Tensor all = params_.flat(g.offset, g.padded);
    comm_->all_gather(mine, all);
  }
}

}  // namespace fivefold::ch02
