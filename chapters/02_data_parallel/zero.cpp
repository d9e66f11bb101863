// SPDX-License-Identifier: MIT
// The ZeRO pieces of DpTrainer: reduce-scatter of the gradients (ZeRO-1: the whole flat buffer
// after the backward; ZeRO-2/3: unit by unit during it), the all-gather of the updated
// parameters (ZeRO-1/2), and ZeRO-3's gather of a unit into a workspace before it runs.
#include "chapters/02_data_parallel/dp_trainer.hpp"

#include "common/check.hpp"
#include "common/trace.hpp"

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

void DpTrainer::launch(InFlight& f, std::unique_ptr<Request> req, const std::string& name) {
  f.req = std::move(req);
  f.name = name;
  f.posted_us = Tracer::instance().now_us();
}

void DpTrainer::poll(InFlight& f) {
  if (f.req && f.req->test()) complete(f);
}

void DpTrainer::complete(InFlight& f) {
  if (!f.req) return;
  f.req->wait();
  f.req.reset();
  const double end = Tracer::instance().now_us();
  if (calls_ > 1) times_.comm_lifetime += (end - f.posted_us) * 1e-6;
  Tracer::instance().add(TraceEvent{f.name, "comm", f.posted_us, end - f.posted_us, 1});
}

void DpTrainer::reduce_unit(int u) {
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

void DpTrainer::all_gather_params() {
  // TUTORIAL: ZeRO-1/2: every rank updated only its slice; the all-gather rebuilds the replica.
  // The owned slice is copied out first: the input of a collective must not alias its output.
  for (const Segment& g : layout_.segments()) {
    const std::int64_t s = g.shard(n_);
    Tensor mine = send_.flat(g.shard_offset, s);
    mine.copy_from(params_.flat(g.offset + r_ * s, s));
    Tensor all = params_.flat(g.offset, g.padded);
    comm_->all_gather(mine, all);
  }
}

void DpTrainer::prefetch_unit(int u) {
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

void DpTrainer::gather_unit(int u) {
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

void DpTrainer::release_unit(int u) {
  const int k = slot_of(u);
  FIVEFOLD_CHECK(holder_[k] == u, "ZeRO-3: unit ", u, " released but workspace ", k, " holds unit ", holder_[k]);
  holder_[k] = -1;  // TUTORIAL: "freed": the next gather into this workspace overwrites it
}

Tensor DpTrainer::gather_shards(const Tensor& shard) {
  // Bookkeeping for the checks and the dump: not part of training, so not counted.
  Tensor full = ops_->zeros({layout_.padded()});
  Uncounted quiet(*comm_);
  for (const Segment& g : layout_.segments()) {
    Tensor all = full.flat(g.offset, g.padded);
    comm_->all_gather(shard.flat(g.shard_offset, g.shard(n_)), all);
  }
  return full;
}

Tensor DpTrainer::dense_params() {
  return layout_.to_dense(*ops_, dc_.zero <= 2 ? params_ : gather_shards(param_shard_));
}

Tensor DpTrainer::dense_grads() {
  return layout_.to_dense(*ops_, dc_.zero == 0 ? grads_ : gather_shards(grad_shard_));
}

}  // namespace fivefold::ch02
