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

VocabParallelEmbedding::VocabParallelEmbedding(Ops& ops, Communicator& tp, nn::Param& w)
    : ops_(&ops), tp_(&tp), w_(w.value), dw_(w.grad), range_(range_of(tp, w.value)) {}

const Tensor& VocabParallelEmbedding::forward(const Tensor& tokens) {
  const std::vector<std::int32_t> t = host_ints(tokens);
  const auto n = static_cast<std::int64_t>(t.size());
  std::vector<std::int32_t> index(n);
  std::vector<float> mask(n);
  for (std::int64_t i = 0; i < n; ++i) {  // TUTORIAL: the masked lookup: ids outside [v0, v0+V/tp) give 0
    const bool mine = t[i] >= range_.start && t[i] < range_.start + range_.size;
    index[i] = mine ? static_cast<std::int32_t>(t[i] - range_.start) : 0;
    mask[i] = mine ? 1.0f : 0.0f;
  }
  index_ = ops_->upload(Tensor::from_vector(index, {n}));
  mask_ = ops_->upload(Tensor::from_vector(mask, {n}));
  nn::ensure(*ops_, y_, {tokens.dim(0), tokens.dim(1), w_.dim(1)});  // [B, T, C]
  ops_->gather_rows(y_, w_, index_, mask_);
  g_forward(*tp_, y_);  // TUTORIAL: each token's row comes from exactly one rank: the sum is the lookup
  return y_;
}

void VocabParallelEmbedding::backward(const Tensor& dx) {
  ops_->scatter_add_rows(dw_, dx, index_, mask_);  // only this rank's tokens land (weight 0 elsewhere)
}

VocabParallelLmHead::VocabParallelLmHead(Ops& ops, Communicator& tp, nn::Param& w)
    : ops_(&ops), tp_(&tp), w_(w.value), dw_(w.grad), range_(range_of(tp, w.value)) {}

const Tensor& VocabParallelLmHead::forward(const Tensor& h) {
  h_ = h;
  nn::ensure(*ops_, logits_, {h.dim(0), h.dim(1), w_.dim(0)});  // [B, T, V/tp]
  nn::linear_forward(*ops_, logits_, h, w_);                    // column-parallel: this rank's vocab slice
  return logits_;
}

double VocabParallelLmHead::loss(const Tensor& targets) {
  TraceSpan span("vocab-parallel cross-entropy", "compute");
  const std::int64_t vl = range_.size, n = logits_.numel() / vl;
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
  local_target_ = ops_->upload(Tensor::from_vector(local, {n}));
  flat_target_ = ops_->upload(Tensor::from_vector(flat, {n}));
  owned_ = ops_->upload(Tensor::from_vector(owned, {n}));
  const Tensor logit_cells = logits_.view({n * vl, 1});  // every logit as a one-element row

  // Local pieces: z_any[i] = l[i, local[i]]; the op's loss = lse_r - z_any and probs = p_r - onehot.
  nn::ensure(*ops_, z_any_, {n, 1});
  ops_->gather_rows(z_any_, logit_cells, flat_target_, Tensor());
  nn::ensure(*ops_, row_loss_, {n});
  nn::ensure(*ops_, probs_, logits_.shape());
  ops_->cross_entropy(row_loss_, probs_, logits_, local_target_, 1.0f);
  nn::ensure(*ops_, ones_, {n, 1});
  ops_->fill(ones_, 1.0f);
  Tensor prob_cells = probs_.view({n * vl, 1});
  ops_->scatter_add_rows(prob_cells, ones_, flat_target_, Tensor());  // undo the one-hot: probs = p_r

  const std::vector<float> rl = row_loss_.to_vector(), za = z_any_.to_vector();
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
    scale[i] = static_cast<float>(std::exp(static_cast<double>(lse_r[i]) - lse) / static_cast<double>(n));
  }
  scale_ = ops_->upload(Tensor::from_vector(scale, {n}));
  if (!row_ids_.defined() || row_ids_.numel() != n) row_ids_ = nn::positions(*ops_, 0, n);
  nn::ensure(*ops_, dlogits_, logits_.shape());
  ops_->gather_rows(dlogits_, probs_, row_ids_, scale_);  // dl = p / N (row i times scale[i])
  nn::ensure(*ops_, minus_, {n, 1});
  ops_->fill(minus_, -1.0f / static_cast<float>(n));
  Tensor dl_cells = dlogits_.view({n * vl, 1});
  ops_->scatter_add_rows(dl_cells, minus_, flat_target_, owned_);  // - onehot / N, on the owner only
  return total / static_cast<double>(n);
}

const Tensor& VocabParallelLmHead::backward() {
  nn::ensure(*ops_, dh_, h_.shape());
  nn::linear_backward(*ops_, dh_, dw_, dlogits_, h_, w_);  // dh partial over this rank's vocab slice
  f_backward(*tp_, dh_);                                   // TUTORIAL: sum the partials (one all-reduce)
  return dh_;
}

}  // namespace fivefold::ch03
