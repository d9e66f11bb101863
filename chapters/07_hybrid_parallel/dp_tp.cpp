// SPDX-License-Identifier: MIT
// DpTpTrainer: chapter 03's TP model, chapter 02's bucketed gradient all-reduce over the DP group.
#include "chapters/07_hybrid_parallel/dp_tp.hpp"

#include <algorithm>

#include "chapters/03_tensor_parallel/tp_layout.hpp"
#include "common/check.hpp"
#include "common/trace.hpp"

namespace fivefold::ch07 {

DpTpComms split_dp_tp(Communicator& world, int tp) {
  FIVEFOLD_CHECK(tp >= 1 && world.size() % tp == 0, "split_dp_tp: tp ", tp, " does not divide the world of ",
                 world.size(), " rank(s)");
  const int r = world.rank(), t = r % tp, d = r / tp;
  DpTpComms c;
  c.tp = world.split(/*color=*/d, /*key=*/t, "tp");  // TUTORIAL: same rows of the batch, ordered by shard
  c.dp = world.split(/*color=*/t, /*key=*/d, "dp");  // TUTORIAL: same shard, ordered by rows
  return c;
}

std::vector<ch02::Unit> shard_units(const ModelConfig& cfg, int tp) {
  std::vector<ch02::Unit> units = ch02::model_units(cfg);
  for (ch02::Unit& u : units) {
    u.numel = 0;
    for (nn::ParamSpec& p : u.params) {
      p.shape = ch03::shard_shape(p.shape, ch03::split_of(p.name), tp);  // TUTORIAL: a rank packs only its shard
      u.numel += shape_numel(p.shape);
    }
  }
  return units;
}

ShardDdp::ShardDdp(Ops& ops, Communicator& dp, nn::ParamRegistry& params, std::vector<ch02::Unit> units,
                   const nn::AdamWConfig& adam, const DpTpConfig& dc, int first_unit)
    : ops_(&ops),
      dp_(&dp),
      dc_(dc),
      layout_(std::move(units), dp.size(), /*per_unit=*/false),
      params_(&params),
      opt_(ops, adam),
      first_unit_(first_unit) {
  const std::int64_t max_elements =
      std::max<std::int64_t>(1, static_cast<std::int64_t>(dc.bucket_mb * 1024 * 1024 / 4));
  buckets_ = ch02::make_buckets(layout_, max_elements);
  grads_ = ops.zeros({layout_.padded()});
  for (int u = 0; u < layout_.num_units(); ++u) {
    unit_params_.emplace_back();
    for (const nn::ParamSpec& s : layout_.unit(u).params) unit_params_.back().push_back(&params.get(s.name));
  }
  if (!dc.zero1) {
    for (nn::Param& p : params.all()) opt_.add(p.value, p.grad);  // each rank updates its own shards
    return;
  }
  // ZeRO-1: the parameters packed like the gradients; AdamW over this rank's slice of both.
  values_ = ops.zeros({layout_.padded()});
  for (int u = 0; u < layout_.num_units(); ++u) {
    std::int64_t at = layout_.offset(u);
    for (nn::Param* p : unit_params_[u]) {
      values_.flat(at, p->value.numel()).copy_from(p->value.view({p->value.numel()}));
      at += p->value.numel();
    }
  }
  gshard_ = ops.zeros({layout_.shard()});
  send_ = ops.zeros({layout_.shard()});
  opt_.add(send_, gshard_);  // TUTORIAL: Adam's moments exist for 1/dp of the shard only
}

void ShardDdp::zero_grad() {
  ++calls_;  // the first call of a step: the schedule is recorded in the first step
  params_->zero_grad();
}

nn::UnitHooks ShardDdp::hooks(bool last) {
  nn::UnitHooks h;
  if (!last) return h;  // an earlier microbatch: its gradients only accumulate in the shards
  h.after_backward = [this](int u) { unit_done(u); };  // TUTORIAL: the unit's gradients are complete
  return h;
}

void ShardDdp::unit_done(int u) {
  u -= first_unit_;  // the decoder's unit index -> this stage's
  // Pack unit u's gradients, weighted by b_d / B, into its place in the flat buffer.
  std::int64_t at = layout_.offset(u);
  for (nn::Param* p : unit_params_[u]) {
    Tensor slot = grads_.flat(at, p->grad.numel());
    slot.copy_from(p->grad.view({p->grad.numel()}));
    ops_->scale(slot, weight_);
    at += p->grad.numel();
  }
  if (calls_ == 1) schedule_.push_back("bwd(" + layout_.unit(u).name + ")");
  // TUTORIAL: as in chapter 02, a bucket's all-reduce starts as soon as its last unit is done,
  // while the TP backward of the earlier layers (and its own TP all-reduces) goes on.
  // Every rank posts its buckets at the same point between the same TP all-reduces, so the two
  // communicators see their calls in one order everywhere (NCCL needs that: a dp kernel waiting
  // on its stream beside a tp kernel must not wait for a rank that launched them the other way).
  if (dc_.overlap && !dc_.zero1 && posted_.post(*dp_, grads_, buckets_, u) && calls_ == 1)
    schedule_.push_back("post AR(bucket " + std::to_string(posted_.posted() - 1) + ")");
  poll(false);
}

void ShardDdp::poll(bool wait) {
  // The posted buckets are tested between units (they progress even where tp is 1); each one's
  // life, from post to observed completion, goes into the trace on lane 1, beside the TP backward.
  posted_.poll(wait, [](std::size_t b, double posted_us) {
    const double end = Tracer::instance().now_us();
    Tracer::instance().add(TraceEvent{"dp iall_reduce bucket " + std::to_string(b), "comm", posted_us, end - posted_us, 1});
  });
}

void ShardDdp::finish() {
  if (dc_.zero1) {
    TraceSpan span("dp gradient reduce-scatter (ZeRO-1)", "comm");
    dp_->reduce_scatter(grads_, gshard_);  // TUTORIAL: each rank keeps the sum of its 1/dp only
    if (calls_ == 1) schedule_.push_back("RS(all)");
    return;
  }
  {
    TraceSpan span("dp gradient all-reduce (exposed)", "comm");
    if (dc_.overlap) {
      poll(true);
    } else {
      for (std::size_t b = 0; b < buckets_.size(); ++b) {
        Tensor slice = grads_.flat(buckets_[b].offset, buckets_[b].numel);
        dp_->all_reduce(slice);
        if (calls_ == 1) schedule_.push_back("AR(bucket " + std::to_string(b) + ")");
      }
    }
  }
  FIVEFOLD_CHECK(!dc_.overlap || posted_.posted() == buckets_.size(), "ShardDdp: ", posted_.posted(), " of ",
                 buckets_.size(), " buckets posted: a unit's backward was not observed");
  posted_.clear();
  // Unpack: every shard gradient is now the global-batch gradient of that shard.
  for (int u = 0; u < layout_.num_units(); ++u) {
    std::int64_t at = layout_.offset(u);
    for (nn::Param* p : unit_params_[u]) {
      p->grad.view({p->grad.numel()}).copy_from(grads_.flat(at, p->grad.numel()));
      at += p->grad.numel();
    }
  }
}

void ShardDdp::update() {
  if (!dc_.zero1) {
    opt_.step();
    return;
  }
  const std::int64_t n = layout_.shard();
  send_.copy_from(values_.flat(dp_->rank() * n, n));
  opt_.step();                        // this rank's slice of every parameter
  dp_->all_gather(send_, values_);  // TUTORIAL: every rank gets every updated slice back
  if (calls_ == 1) schedule_.push_back("AG(params)");
  for (int u = 0; u < layout_.num_units(); ++u) {
    std::int64_t at = layout_.offset(u);
    for (nn::Param* p : unit_params_[u]) {
      p->value.view({p->value.numel()}).copy_from(values_.flat(at, p->value.numel()));
      at += p->value.numel();
    }
  }
}

DpTpTrainer::DpTpTrainer(Ops& ops, Communicator& tp, Communicator& dp, const ModelConfig& cfg, const DpTpConfig& dc)
    : model_(ops, tp, cfg),
      sync_(ops, dp, model_.params(), shard_units(cfg, tp.size()), nn::AdamWConfig::from(cfg), dc) {
  FIVEFOLD_CHECK(cfg.experts == 0, "DpTpTrainer: the TP model is dense; got --experts ", cfg.experts);
}

}  // namespace fivefold::ch07
