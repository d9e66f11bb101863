// SPDX-License-Identifier: MIT
// The vocab-parallel embedding and cross-entropy, composed from existing Ops: the masked lookup
// is gather_rows with a 0/1 weight per token; the target logit is gather_rows over the logits
// viewed as N*V/tp rows of one element; the per-row rescaling of the local softmax is gather_rows
// with a weight per row. The few per-row numbers (N of them) are combined on the host.
#include "chapters/03_tensor_parallel/tp_vocab.hpp"

#include <cmath>
#include <vector>

#include "chapters/03_tensor_parallel/tp_linear.hpp"
#include "common/check.hpp"
#include "nn/attention.hpp"
#include "nn/layers.hpp"
#include "common/trace.hpp"

namespace fivefold::ch03 {

namespace {

VocabRange range_of(const Communicator& tp, const Tensor& shard) {
  return {tp.rank() * shard.dim(0), shard.dim(0)};
}

/// Host int32 values of @p t (any device).
std::vector<std::int32_t> host_ints(const Tensor& t) { return t.to(Device::host).to_ivector(); }

}  // namespace

VocabParallelEmbedding::VocabParallelEmbedding(Ops& ops, Communicator& tp, nn::Param& w, bool reduce)
    : ops_(&ops), tp_(&tp), w_(w.value), dw_(w.grad), range_(range_of(tp, w.value)), reduce_(reduce) {}

const Tensor& VocabParallelEmbedding::forward(const Tensor& tokens) {
  nn::Pass p;
  p.tokens = tokens;
  return forward(own_, p);
}

const Tensor& VocabParallelEmbedding::forward(nn::Acts& a, const nn::Pass& pass) {
  Saved& s = static_cast<Saved&>(a);
  const Tensor& tokens = pass.tokens;
  const std::vector<std::int32_t> t = host_ints(tokens);
  const auto n = static_cast<std::int64_t>(t.size());
  std::vector<std::int32_t> index(n);
  std::vector<float> mask(n);
  for (std::int64_t i = 0; i < n; ++i) {  // TUTORIAL: the masked lookup: ids outside [v0, v0+V/tp) give 0
    const bool mine = t[i] >= range_.start && t[i] < range_.start + range_.size;
    index[i] = mine ? static_cast<std::int32_t>(t[i] - range_.start) : 0;
    mask[i] = mine ? 1.0f : 0.0f;
  }
  s.index = ops_->upload(Tensor::from_vector(index, {n}));
  s.mask = ops_->upload(Tensor::from_vector(mask, {n}));
  nn::ensure(*ops_, s.y, {tokens.dim(0), tokens.dim(1), w_.dim(1)});  // [B, T, C]
  ops_->gather_rows(s.y, w_, s.index, s.mask);
  if (reduce_) g_forward(*tp_, s.y);  // TUTORIAL: each token's row comes from exactly one rank: the sum is the lookup
  return s.y;
}

void VocabParallelEmbedding::backward_weight(nn::Acts& a, const Tensor& dx) {
  Saved& s = static_cast<Saved&>(a);
  ops_->scatter_add_rows(dw_, dx, s.index, s.mask);  // only this rank's tokens land (weight 0 elsewhere)
}

VocabParallelLmHead::VocabParallelLmHead(Ops& ops, Communicator& tp, nn::Param& w, bool reduce)
    : ops_(&ops), tp_(&tp), w_(w.value), dw_(w.grad), range_(range_of(tp, w.value)), reduce_(reduce) {}

const Tensor& VocabParallelLmHead::forward(nn::Acts& a, const Tensor& h) {
  Saved& s = static_cast<Saved&>(a);
  s.h = h;
  nn::ensure(*ops_, s.logits, {h.dim(0), h.dim(1), w_.dim(0)});  // [B, T, V/tp]
  nn::linear_forward(*ops_, s.logits, h, w_);                    // column-parallel: this rank's vocab slice
  return s.logits;
}

double VocabParallelLmHead::loss(const Tensor& targets) {
  nn::Pass p;
  p.targets = targets;
  return loss(own_, p);
}

double VocabParallelLmHead::loss(nn::Acts& a, const nn::Pass& pass) {
  Saved& sv = static_cast<Saved&>(a);
  const Tensor& targets = pass.targets;
  TraceSpan span("vocab-parallel cross-entropy", "compute");
  const std::int64_t vl = range_.size, n = sv.logits.numel() / vl;
  const std::vector<std::int32_t> t = host_ints(targets);
  FIVEFOLD_CHECK(static_cast<std::int64_t>(t.size()) == n, "VocabParallelLmHead::loss: targets ", targets.str(),
                 " need one per logits row (", n, ")");
  // Per row: the target's column on this rank (0 when another rank owns it) and whether we own it.
  std::vector<std::int32_t> local(n), flat(n);
  std::vector<float> owned(n);
  for (std::int64_t i = 0; i < n; ++i) {
    const bool mine = t[i] >= range_.start && t[i] < range_.start + vl;
    local[i] = mine ? static_cast<std::int32_t>(t[i] - range_.start) : 0;
    flat[i] = static_cast<std::int32_t>(i * vl + local[i]);
    owned[i] = mine ? 1.0f : 0.0f;
  }
  sv.local_target = ops_->upload(Tensor::from_vector(local, {n}));
  sv.flat_target = ops_->upload(Tensor::from_vector(flat, {n}));
  sv.owned = ops_->upload(Tensor::from_vector(owned, {n}));
  const Tensor logit_cells = sv.logits.view({n * vl, 1});  // every logit as a one-element row

  // Local pieces: z_any[i] = l[i, local[i]]; the op's loss = lse_r - z_any and probs = p_r - onehot.
  nn::ensure(*ops_, sv.z_any, {n, 1});
  ops_->gather_rows(sv.z_any, logit_cells, sv.flat_target, Tensor());
  nn::ensure(*ops_, sv.row_loss, {n});
  nn::ensure(*ops_, sv.probs, sv.logits.shape());
  ops_->cross_entropy(sv.row_loss, sv.probs, sv.logits, sv.local_target, 1.0f);
  nn::ensure(*ops_, sv.ones, {n, 1});
  ops_->fill(sv.ones, 1.0f);
  Tensor prob_cells = sv.probs.view({n * vl, 1});
  ops_->scatter_add_rows(prob_cells, sv.ones, sv.flat_target, Tensor());  // undo the one-hot: probs = p_r

  const std::vector<float> rl = sv.row_loss.to_vector(), za = sv.z_any.to_vector();
  std::vector<float> lse_r(n), z_own(n);
  for (std::int64_t i = 0; i < n; ++i) {
    lse_r[i] = rl[i] + za[i];
    z_own[i] = owned[i] != 0.0f ? za[i] : 0.0f;
  }
  // TUTORIAL: all-reduce 1 of 3: the max of the local log-sum-exps (keeps exp() in range).
  Tensor m = ops_->upload(Tensor::from_vector(lse_r, {n}));
  tp_->all_reduce(m, ReduceOp::max);
  const std::vector<float> mx = m.to_vector();
  std::vector<float> e(n);
  for (std::int64_t i = 0; i < n; ++i) e[i] = std::exp(lse_r[i] - mx[i]);
  // TUTORIAL: all-reduce 2 of 3: the sum over ranks of the exponentials, S = sum_r exp(lse_r - M).
  Tensor s = ops_->upload(Tensor::from_vector(e, {n}));
  tp_->all_reduce(s);
  // TUTORIAL: all-reduce 3 of 3: the target logit (only its owner contributes a non-zero).
  Tensor z = ops_->upload(Tensor::from_vector(z_own, {n}));
  tp_->all_reduce(z);
  const std::vector<float> sum = s.to_vector(), zt = z.to_vector();

  double total = 0.0;
  std::vector<float> scale(n);
  for (std::int64_t i = 0; i < n; ++i) {
    const double lse = static_cast<double>(mx[i]) + std::log(static_cast<double>(sum[i]));
    total += lse - zt[i];
    // softmax over the whole vocabulary = local softmax * exp(lse_r - lse); the loss is a mean.
    const double share = std::exp(static_cast<double>(lse_r[i]) - lse);
    scale[i] = static_cast<float>(pass.loss_scale > 0 ? share * pass.loss_scale : share / static_cast<double>(n));
  }
  sv.scale = ops_->upload(Tensor::from_vector(scale, {n}));
  if (!sv.row_ids.defined() || sv.row_ids.numel() != n) sv.row_ids = nn::positions(*ops_, 0, n);
  nn::ensure(*ops_, sv.dlogits, sv.logits.shape());
  ops_->gather_rows(sv.dlogits, sv.probs, sv.row_ids, sv.scale);  // dl = p / N (row i times scale[i])
  nn::ensure(*ops_, sv.minus, {n, 1});
  ops_->fill(sv.minus, pass.loss_scale > 0 ? -static_cast<float>(pass.loss_scale) : -1.0f / static_cast<float>(n));
  Tensor dl_cells = sv.dlogits.view({n * vl, 1});
  ops_->scatter_add_rows(dl_cells, sv.minus, sv.flat_target, sv.owned);  // - onehot / N, on the owner only
  return total / static_cast<double>(n);
}

const Tensor& VocabParallelLmHead::backward_input(nn::Acts& a) {
  Saved& s = static_cast<Saved&>(a);
  nn::ensure(*ops_, s.dh, s.h.shape());
  nn::linear_backward_input(*ops_, s.dh, s.dlogits, w_);  // dh partial over this rank's vocab slice
  if (reduce_) f_backward(*tp_, s.dh);                    // TUTORIAL: sum the partials (one all-reduce)
  return s.dh;
}

void VocabParallelLmHead::backward_weight(nn::Acts& a) {
  Saved& s = static_cast<Saved&>(a);
  nn::linear_backward_weight(*ops_, dw_, s.dlogits, s.h);  // this rank's rows only
}

const Tensor& VocabParallelLmHead::backward() {
  const Tensor& dh = backward_input(own_);
  backward_weight(own_);
  return dh;
}

std::vector<std::int32_t> VocabParallelLmHead::argmax(const Tensor& logits, std::int64_t t) {
  return vocab_parallel_argmax(*tp_, *ops_, logits, t, range_.start);
}

std::vector<std::int32_t> vocab_parallel_argmax(Communicator& tp, Ops& ops, const Tensor& logits, std::int64_t t,
                                                std::int64_t vocab_start) {
  const std::int64_t B = logits.dim(0), T = logits.dim(1), vl = logits.dim(2);
  const std::vector<float> h = logits.to_vector();
  std::vector<float> offer(2 * B);  // per row: (best value, its global id) on this rank
  for (std::int64_t b = 0; b < B; ++b) {
    const float* row = &h[(b * T + t) * vl];
    std::int64_t best = 0;
    for (std::int64_t v = 1; v < vl; ++v)
      if (row[v] > row[best]) best = v;
    offer[2 * b] = row[best];
    offer[2 * b + 1] = static_cast<float>(vocab_start + best);  // exact: ids < 2^24
  }
  Tensor all = ops.empty({tp.size(), 2 * B});
  tp.all_gather(ops.upload(Tensor::from_vector(offer, {2 * B})), all);  // TUTORIAL: 2 floats per row, not V/tp
  const std::vector<float> a = all.to_vector();
  std::vector<std::int32_t> out(B);
  for (std::int64_t b = 0; b < B; ++b) {
    float best = a[2 * b];
    std::int32_t id = static_cast<std::int32_t>(a[2 * b + 1]);
    for (int r = 1; r < tp.size(); ++r) {  // ranks hold increasing ids, so '>' keeps the lower id on ties
      const float v = a[r * 2 * B + 2 * b];
      if (v > best) best = v, id = static_cast<std::int32_t>(a[r * 2 * B + 2 * b + 1]);
    }
    out[b] = id;
  }
  return out;
}

}  // namespace fivefold::ch03
