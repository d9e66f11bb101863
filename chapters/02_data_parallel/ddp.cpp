// SPDX-License-Identifier: MIT
// Stage 0 (DDP): the replica, the naive per-parameter all-reduce and the bucketed all-reduce
// overlapped with the backward.
#include "chapters/02_data_parallel/ddp.hpp"

#include <algorithm>

#include "common/check.hpp"
#include "common/trace.hpp"

namespace fivefold::ch02 {

Ddp::Ddp(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc)
    // DDP never splits a buffer, so it needs no padding (a layout for n = 1).
    : DpTrainer(ops, comm, cfg, dc, FlatLayout(model_units(cfg), 1, false)) {
  const int U = layout_.num_units();
  std::vector<Tensor> values(U), grads(U);
  params_ = alloc(layout_.padded(), mem_.params);  // every rank draws the same initial values from the seed
  params_.copy_from(layout_.init_full(cfg.seed));
  grads_ = alloc(layout_.padded(), mem_.grads);
  for (int u = 0; u < U; ++u) {
    values[u] = params_.flat(layout_.offset(u), layout_.unit(u).numel);
    grads[u] = grads_.flat(layout_.offset(u), layout_.unit(u).numel);
  }
  add_to_optimizer(params_, grads_);
  build_model(values, grads);
  if (dc.bucket_mb > 0)
    buckets_ = make_buckets(layout_, std::max<std::int64_t>(1, static_cast<std::int64_t>(dc.bucket_mb * 1024 * 1024 / 4)));
}

bool post_ready_bucket(Communicator& comm, Tensor& grads, const std::vector<Bucket>& buckets, int u,
                       std::vector<std::unique_ptr<Request>>& pending) {
  const std::size_t b = pending.size();  // the next bucket to post
  if (b >= buckets.size() || buckets[b].first_unit != u) return false;  // its lowest unit finishes last
  Tensor slice = grads.flat(buckets[b].offset, buckets[b].numel);
  // TUTORIAL: non-blocking: the backward of the next units runs while this bucket is reduced.
  pending.push_back(comm.iall_reduce(slice));
  return true;
}

bool PostedBuckets::post(Communicator& comm, Tensor& grads, const std::vector<Bucket>& buckets, int u) {
  if (!post_ready_bucket(comm, grads, buckets, u, requests_)) return false;
  posted_us_.push_back(Tracer::instance().now_us());
  done_.push_back(false);
  return true;
}

void PostedBuckets::poll(bool wait, const Done& done) {
  // TUTORIAL: MPI moves a non-blocking collective forward only inside MPI calls (no progress
  // thread), so the posted buckets are tested between units: each test() is such a call.
  for (std::size_t b = 0; b < requests_.size(); ++b) {
    if (done_[b]) continue;
    if (wait) {
      requests_[b]->wait();  // TUTORIAL: the exposed part: communication the backward did not hide
    } else if (!requests_[b]->test()) {
      continue;
    }
    done_[b] = true;
    done(b, posted_us_[b]);
  }
}

void PostedBuckets::clear() {
  for (bool d : done_) FIVEFOLD_CHECK(d, "PostedBuckets: a bucket's all-reduce is still in flight");
  requests_.clear();
  posted_us_.clear();
  done_.clear();
}

nn::UnitHooks Ddp::hooks(bool last) {
  nn::UnitHooks h;
  if (!last) return h;  // an earlier microbatch: its gradients only accumulate in grads_
  h.before_forward = [this](int u) { note("fwd", u); };
  h.before_backward = [this](int u) {
    poll(false);
    note("bwd", u);
  };
  h.after_backward = [this](int u) {
    Tensor g = grads_.flat(layout_.offset(u), layout_.unit(u).numel);
    weigh(g);
    if (!dc_.overlap || buckets_.empty()) return;
    TraceSpan span("post iall_reduce", "comm");
    if (posted_.post(*comm_, grads_, buckets_, u)) note("post AR(bucket " + std::to_string(posted_.posted() - 1) + ")", -1);
    poll(false);
  };
  return h;
}

void Ddp::poll(bool wait) {
  posted_.poll(wait, [this](std::size_t b, double posted_us) { completed("iall_reduce bucket " + std::to_string(b), posted_us); });
}

void Ddp::finish() {
  if (dc_.bucket_mb <= 0) {  // naive DDP: one blocking all-reduce per parameter, after the backward
    note("AR(each of the " + std::to_string(nn::model_param_specs(cfg_).size()) + " tensors)", -1);
    for (int u = 0; u < layout_.num_units(); ++u) {
      std::int64_t at = layout_.offset(u);
      for (const nn::ParamSpec& p : layout_.unit(u).params) {
        Tensor g = grads_.flat(at, shape_numel(p.shape));
        comm_->all_reduce(g);
        at += g.numel();
      }
    }
    return;
  }
  if (!dc_.overlap) {  // buckets, but reduced only after the backward: nothing hides the communication
    for (std::size_t b = 0; b < buckets_.size(); ++b) {
      Tensor g = grads_.flat(buckets_[b].offset, buckets_[b].numel);
      comm_->all_reduce(g);
      note("AR(bucket " + std::to_string(b) + ")", -1);
    }
    return;
  }
  FIVEFOLD_CHECK(posted_.posted() == buckets_.size(), "Ddp: ", posted_.posted(), " of ", buckets_.size(),
                 " buckets were posted during the backward");
  TraceSpan span("wait for buckets", "comm");
  note("wait(buckets)", -1);
  poll(true);
  posted_.clear();
}

void Ddp::update() {
  note("Adam", -1);
  opt_->step();  // the same update on every replica: the gradients are the same everywhere
}

}  // namespace fivefold::ch02
