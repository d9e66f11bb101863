// SPDX-License-Identifier: MIT
// The data-parallel trainer: storage per stage, one training step, and stage 0 (DDP): the naive
// per-parameter all-reduce and the bucketed all-reduce overlapped with the backward.
// The ZeRO pieces (reduce-scatter, gathers, the update of a shard) are in zero.cpp.
#include "chapters/02_data_parallel/dp_trainer.hpp"

#include <algorithm>
#include <chrono>

#include "common/check.hpp"
#include "common/trace.hpp"

namespace fivefold::ch02 {

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

DpTrainer::DpTrainer(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc)
    : ops_(&ops),
      comm_(&comm),
      cfg_(cfg),
      dc_(dc),
      // DDP never splits a buffer, so it needs no padding (a layout for n = 1); ZeRO-2/3 work per unit.
      layout_(model_units(cfg), dc.zero == 0 ? 1 : comm.size(), dc.zero >= 2),
      n_(comm.size()),
      r_(comm.rank()) {
  FIVEFOLD_USAGE_CHECK(dc.zero >= 0 && dc.zero <= 3, "--zero ", dc.zero, " is not a ZeRO stage; pass 0, 1, 2 or 3");
  FIVEFOLD_USAGE_CHECK(dc.bucket_mb >= 0, "--bucket-mb ", dc.bucket_mb, " must be >= 0 (0 = no buckets)");
  const int U = layout_.num_units();
  const std::int64_t s = layout_.shard();
  std::vector<Tensor> values(U), grads(U);
  opt_ = std::make_unique<nn::AdamW>(ops, nn::AdamWConfig::from(cfg));
  auto add_to_optimizer = [&](const Tensor& p, const Tensor& g) {
    opt_->add(p, g);
    mem_.optimizer += 2 * static_cast<std::int64_t>(p.nbytes());  // AdamW's m and v, same size
  };
  if (dc.zero <= 2) {  // a full replica: every rank draws the same initial values from the seed
    params_ = alloc(layout_.padded(), mem_.params);
    params_.copy_from(layout_.init_full(cfg.seed));
    for (int u = 0; u < U; ++u) values[u] = params_.flat(layout_.offset(u), layout_.unit(u).numel);
  }
  if (dc.zero <= 1) {
    grads_ = alloc(layout_.padded(), mem_.grads);
    for (int u = 0; u < U; ++u) grads[u] = grads_.flat(layout_.offset(u), layout_.unit(u).numel);
  }
  if (dc.zero >= 1) grad_shard_ = alloc(s, mem_.grads);  // TUTORIAL: this rank's 1/n of the gradient
  if (dc.zero >= 2) {  // one unit's full gradient at a time, reduce-scattered right after its backward
    for (int k = 0; k < (dc.overlap ? 2 : 1); ++k) gws_[k] = alloc(layout_.max_padded(), mem_.buffers);
    for (int u = 0; u < U; ++u) grads[u] = gws_[gslot_of(u)].flat(0, layout_.unit(u).numel);
  }
  if (dc.zero == 0) add_to_optimizer(params_, grads_);
  if (dc.zero == 1 || dc.zero == 2) {  // the optimizer sees only the owned slice of each segment
    send_ = alloc(s, mem_.buffers);
    for (const Segment& g : layout_.segments())
      add_to_optimizer(params_.flat(g.offset + r_ * g.shard(n_), g.shard(n_)), grad_shard_.flat(g.shard_offset, g.shard(n_)));
  }
  if (dc.zero == 3) {  // TUTORIAL: only the shard is stored; units are gathered into workspaces
    param_shard_ = alloc(s, mem_.params);
    param_shard_.copy_from(layout_.init_shard(cfg.seed, r_));
    for (int k = 0; k < (dc.prefetch ? 2 : 1); ++k) ws_[k] = alloc(layout_.max_padded(), mem_.buffers);
    for (int u = 0; u < U; ++u) values[u] = ws_[slot_of(u)].flat(0, layout_.unit(u).numel);
    add_to_optimizer(param_shard_, grad_shard_);
  }
  model_ = std::make_unique<UnitModel>(ops, cfg, layout_, values, grads);
  if (dc.zero == 0 && dc.bucket_mb > 0)
    buckets_ = make_buckets(layout_, std::max<std::int64_t>(1, static_cast<std::int64_t>(dc.bucket_mb * 1024 * 1024 / 4)));
}

Tensor DpTrainer::alloc(std::int64_t numel, std::int64_t& category) {
  Tensor t = ops_->zeros({numel});
  category += static_cast<std::int64_t>(t.nbytes());
  return t;
}

std::vector<Bucket> make_buckets(const FlatLayout& layout, std::int64_t max_elements) {
  // TUTORIAL: buckets follow the BACKWARD order (the head's gradients are complete first), whole
  // units at a time, each closed once it holds at least max_elements.
  std::vector<Bucket> buckets;
  std::int64_t acc = 0;
  int last = layout.num_units() - 1;
  for (int u = layout.num_units() - 1; u >= 0; --u) {
    acc += layout.unit(u).numel;
    if (acc >= max_elements || u == 0) {
      const std::int64_t end = layout.offset(last) + layout.unit(last).numel;
      buckets.push_back(Bucket{u, last, layout.offset(u), end - layout.offset(u)});
      acc = 0;
      last = u - 1;
    }
  }
  return buckets;
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

UnitHooks DpTrainer::hooks() {
  UnitHooks h;
  const float w = static_cast<float>(weight_);
  auto unit_grads = [this](int u) {  // unit u's gradients, wherever this stage keeps them
    return dc_.zero <= 1 ? grads_.flat(layout_.offset(u), layout_.unit(u).numel)
                         : gws_[gslot_of(u)].flat(0, layout_.unit(u).numel);
  };
  h.before_forward = [this](int u) {
    if (dc_.zero == 3) {
      gather_unit(u);
      if (dc_.prefetch && u + 1 < layout_.num_units()) prefetch_unit(u + 1);  // TUTORIAL: runs during fwd(u)
    }
    note("fwd", u);
  };
  if (dc_.zero == 3) {
    h.after_forward = [this](int u) {
      progress();  // drives the prefetch of the next unit (MPI progress)
      release_unit(u);
    };
  }
  h.before_backward = [this](int u) {
    if (dc_.zero == 3) {
      gather_unit(u);  // TUTORIAL: gathered again: the forward freed it
      if (dc_.prefetch && u > 0) prefetch_unit(u - 1);
    }
    if (dc_.zero >= 2) {
      complete(reduces_[gslot_of(u)]);  // this workspace's previous reduce-scatter must be done
      Tensor g = gws_[gslot_of(u)].flat(0, layout_.segment_of(u).padded);
      ops_->fill(g, 0.0f);  // the padding too: it is summed by the reduce-scatter
    }
    progress();
    note("bwd", u);
  };
  h.after_backward = [this, w, unit_grads](int u) {
    Tensor g = unit_grads(u);
    ops_->scale(g, w);  // TUTORIAL: weight b_r/B, so the SUM over ranks is the global-batch mean
    if (dc_.zero >= 2) reduce_unit(u);
    if (dc_.zero == 3) release_unit(u);
    if (dc_.zero == 0 && dc_.overlap && !buckets_.empty()) {
      TraceSpan span("post iall_reduce", "comm");
      if (post_ready_bucket(*comm_, grads_, buckets_, u, pending_)) {
        posted_us_.push_back(Tracer::instance().now_us());
        done_.push_back(false);
        if (calls_ == 1) schedule_.push_back("post AR(bucket " + std::to_string(pending_.size() - 1) + ")");
      }
      progress();
    }
  };
  return h;
}

void DpTrainer::note(const std::string& what, int u) {
  if (calls_ == 1) schedule_.push_back(what + "(" + layout_.unit(u).name + ")");
}

double DpTrainer::step(const nn::Batch& local, double weight) {
  weight_ = weight;
  ++calls_;
  const UnitHooks h = hooks();
  double t = now_s();
  auto lap = [&](double& acc) {
    ops_->synchronize();
    const double t1 = now_s();
    if (calls_ > 1) acc += t1 - t;  // the first step is a warm-up
    t = t1;
  };
  if (grads_.defined()) ops_->fill(grads_, 0.0f);
  const double loss = model_->forward(local.inputs, local.targets, h);
  lap(times_.forward);
  model_->backward(h);
  lap(times_.backward);
  if (dc_.zero == 0) finish_buckets();
  for (InFlight& f : reduces_) complete(f);  // stages 2-3: the last reduce-scatters
  lap(times_.exposed_comm);
  if (dc_.zero == 1) {
    zero1_update(*comm_, params_, grads_, grad_shard_, send_, *opt_);
  } else {
    opt_->step();  // TUTORIAL: AdamW is elementwise: a shard's update equals that slice of the full one
    if (dc_.zero == 2) all_gather_params();
  }
  lap(times_.update);
  if (calls_ > 1) ++times_.steps;
  return loss;
}

void DpTrainer::progress() {
  // TUTORIAL: MPI moves a non-blocking collective forward only inside MPI calls (no progress
  // thread), so we test the pending requests between units: each test() is such a call.
  for (InFlight& f : gathers_) poll(f);
  for (InFlight& f : reduces_) poll(f);
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    if (done_[i] || !pending_[i]->test()) continue;
    done_[i] = true;
    const double end = Tracer::instance().now_us();
    if (calls_ > 1) times_.comm_lifetime += (end - posted_us_[i]) * 1e-6;
    Tracer::instance().add(TraceEvent{"iall_reduce bucket " + std::to_string(i), "comm", posted_us_[i],
                                      end - posted_us_[i], 1});
  }
}

void DpTrainer::finish_buckets() {
  if (dc_.bucket_mb <= 0) {  // naive DDP: one blocking all-reduce per parameter, after the backward
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
    for (const Bucket& b : buckets_) {
      Tensor g = grads_.flat(b.offset, b.numel);
      comm_->all_reduce(g);
    }
    return;
  }
  FIVEFOLD_CHECK(pending_.size() == buckets_.size(), "DpTrainer: ", pending_.size(), " of ", buckets_.size(),
                 " buckets were posted during the backward");
  TraceSpan span("wait for buckets", "comm");
  if (calls_ == 1) schedule_.push_back("wait(buckets)");
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    if (done_[i]) continue;
    pending_[i]->wait();  // TUTORIAL: the exposed part: communication the backward did not hide
    done_[i] = true;
    const double end = Tracer::instance().now_us();
    if (calls_ > 1) times_.comm_lifetime += (end - posted_us_[i]) * 1e-6;
    Tracer::instance().add(TraceEvent{"iall_reduce bucket " + std::to_string(i), "comm", posted_us_[i],
                                      end - posted_us_[i], 1});
  }
  pending_.clear();
  posted_us_.clear();
  done_.clear();
}

}  // namespace fivefold::ch02
