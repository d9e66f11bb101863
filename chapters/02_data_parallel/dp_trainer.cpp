// SPDX-License-Identifier: MIT
// What the data-parallel stages share: the step (nn::train_step with the stage as synchroniser),
// storage and memory accounting, the optimizer, the trace of non-blocking calls, the uncounted
// gathers of the checks; and the factory that picks the stage. The stages themselves are in
// ddp.cpp (stage 0) and zero.cpp / zero3.cpp (stages 1, 2, 3).
#include "chapters/02_data_parallel/dp_trainer.hpp"

#include "chapters/02_data_parallel/ddp.hpp"
#include "chapters/02_data_parallel/zero.hpp"
#include "common/check.hpp"
#include "common/trace.hpp"

namespace fivefold::ch02 {

std::unique_ptr<DpTrainer> DpTrainer::make(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc) {
  FIVEFOLD_USAGE_CHECK(dc.zero >= 0 && dc.zero <= 3, "--zero ", dc.zero, " is not a ZeRO stage; pass 0, 1, 2 or 3");
  FIVEFOLD_USAGE_CHECK(dc.bucket_mb >= 0, "--bucket-mb ", dc.bucket_mb, " must be >= 0 (0 = no buckets)");
  switch (dc.zero) {
    case 0: return std::make_unique<Ddp>(ops, comm, cfg, dc);
    case 1: return std::make_unique<Zero1>(ops, comm, cfg, dc);
    case 2: return std::make_unique<Zero2>(ops, comm, cfg, dc);
    default: return std::make_unique<Zero3>(ops, comm, cfg, dc);
  }
}

DpTrainer::DpTrainer(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc, FlatLayout layout)
    : ops_(&ops),
      comm_(&comm),
      cfg_(cfg),
      dc_(dc),
      layout_(std::move(layout)),
      n_(comm.size()),
      r_(comm.rank()),
      opt_(std::make_unique<nn::AdamW>(ops, nn::AdamWConfig::from(cfg))) {}

double DpTrainer::step(const nn::Batch& local, double weight) { return step(std::vector<nn::Batch>{local}, weight); }

double DpTrainer::step(const std::vector<nn::Batch>& microbatches, double weight) {
  weight_ = weight;
  ++calls_;
  return nn::train_step(*model_, *this, microbatches, &times_);
}

Tensor DpTrainer::alloc(std::int64_t numel, std::int64_t& category) {
  Tensor t = ops_->zeros({numel});
  category += static_cast<std::int64_t>(t.nbytes());
  return t;
}

void DpTrainer::add_to_optimizer(const Tensor& p, const Tensor& g) {
  opt_->add(p, g);
  mem_.optimizer += 2 * static_cast<std::int64_t>(p.nbytes());  // AdamW's m and v, same size
}

void DpTrainer::build_model(const std::vector<Tensor>& values, const std::vector<Tensor>& grads) {
  model_ = std::make_unique<UnitModel>(*ops_, cfg_, layout_, values, grads);
}

void DpTrainer::note(const std::string& what, int u) {
  if (calls_ == 1) schedule_.push_back(u < 0 ? what : what + "(" + layout_.unit(u).name + ")");
}

void DpTrainer::weigh(Tensor& unit_grads) {
  ops_->scale(unit_grads, static_cast<float>(weight_));  // TUTORIAL: b_r/B, so the SUM over ranks is the global mean
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
  completed(f.name, f.posted_us);
}

void DpTrainer::completed(const std::string& name, double posted_us) {
  const double end = Tracer::instance().now_us();
  if (calls_ > 1) times_.comm_lifetime += (end - posted_us) * 1e-6;
  Tracer::instance().add(TraceEvent{name, "comm", posted_us, end - posted_us, 1});
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

}  // namespace fivefold::ch02
