// SPDX-License-Identifier: MIT
// ZeRO-3 / FSDP: this rank's parameter shard, a unit gathered into a workspace before it runs
// (the next one prefetched), released after; the gradients as ZeRO-2.
#include "chapters/02_data_parallel/zero.hpp"

#include "common/check.hpp"

namespace fivefold::ch02 {

Zero3::Zero3(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc)
    : Zero2(ops, comm, cfg, dc, true) {
  const int U = layout_.num_units();
  std::vector<Tensor> values(U), grads(U);
  // TUTORIAL: only the shard is stored; units are gathered into workspaces
  param_shard_ = alloc(layout_.shard(), mem_.params);
  param_shard_.copy_from(layout_.init_shard(cfg.seed, r_));
  for (int k = 0; k < (dc.prefetch ? 2 : 1); ++k) ws_[k] = alloc(layout_.max_padded(), mem_.buffers);
  for (int u = 0; u < U; ++u) {
    values[u] = ws_[slot_of(u)].flat(0, layout_.unit(u).numel);
    grads[u] = unit_grads(u);
  }
  add_to_optimizer(param_shard_, grad_shard_);
  build_model(values, grads);
}

nn::UnitHooks Zero3::hooks(bool last) {
  // TUTORIAL: ZeRO-3 is ZeRO-2 (the gradient side: workspace, weight, reduce-scatter) plus a
  // gather of the unit's parameters before it runs and a release after.
  nn::UnitHooks h = Zero2::hooks(last);
  h.before_forward = [this, fwd = h.before_forward](int u) {
    gather_unit(u);
    if (dc_.prefetch && u + 1 < layout_.num_units()) prefetch_unit(u + 1);  // TUTORIAL: runs during fwd(u)
    fwd(u);
  };
  h.after_forward = [this](int u) {
    progress();  // drives the prefetch of the next unit (MPI progress)
    release_unit(u);
  };
  h.before_backward = [this, bwd = h.before_backward](int u) {
    gather_unit(u);  // TUTORIAL: gathered again: the forward freed it
    if (dc_.prefetch && u > 0) prefetch_unit(u - 1);
    bwd(u);
  };
  h.after_backward = [this, done = h.after_backward](int u) {
    done(u);
    release_unit(u);
  };
  return h;
}

void Zero3::update() {
  note("Adam(slice)", -1);
  opt_->step();  // TUTORIAL: each rank updates its shard; nothing to gather until the next forward
}

void Zero3::progress() {
  for (InFlight& f : gathers_) poll(f);
  Zero2::progress();
}

void Zero3::prefetch_unit(int u) {
  const int k = slot_of(u);
  if (holder_[k] == u) return;
  FIVEFOLD_CHECK(holder_[k] == -1, "ZeRO-3: workspace ", k, " still holds unit ", holder_[k], " when unit ", u,
                 " is prefetched (release it after use)");
  const Segment& g = layout_.segment_of(u);
  const Tensor mine = param_shard_.flat(g.shard_offset, g.shard(n_));
  Tensor full = ws_[k].flat(0, g.padded);
  // TUTORIAL: non-blocking: the gather of the next unit runs while the current one computes.
  launch(gathers_[k], comm_->iall_gather(mine, full), "all_gather " + layout_.unit(u).name);
  holder_[k] = u;
  note("prefetch AG", u);
}

void Zero3::gather_unit(int u) {
  const int k = slot_of(u);
  if (holder_[k] == u) {  // prefetched: wait until it has arrived
    complete(gathers_[k]);
    return;
  }
  FIVEFOLD_CHECK(holder_[k] == -1, "ZeRO-3: workspace ", k, " still holds unit ", holder_[k], " when unit ", u,
                 " is gathered (release it after use)");
  const Segment& g = layout_.segment_of(u);
  const Tensor mine = param_shard_.flat(g.shard_offset, g.shard(n_));  // [padded_u / n]
  Tensor full = ws_[k].flat(0, g.padded);                              // [padded_u]
  // TUTORIAL: ZeRO-3: the unit's full parameters exist only from this gather until release.
  comm_->all_gather(mine, full);
  holder_[k] = u;
  note("AG", u);
}

void Zero3::release_unit(int u) {
  const int k = slot_of(u);
  FIVEFOLD_CHECK(holder_[k] == u, "ZeRO-3: unit ", u, " released but workspace ", k, " holds unit ", holder_[k]);
  holder_[k] = -1;  // TUTORIAL: "freed": the next gather into this workspace overwrites it
}

}  // namespace fivefold::ch02
