// SPDX-License-Identifier: MIT
// The MoE layer over the ep group: route, permute, exchange, run the local experts, exchange
// back, combine; the backward the same way with the forward's splits.
#include "chapters/06_expert_parallel/ep_moe.hpp"

#include "common/check.hpp"
#include "common/clock.hpp"
#include "common/trace.hpp"
#include "nn/layers.hpp"

namespace fivefold::ch06 {

namespace {

std::vector<nn::SwiGluWeights> local_experts(nn::ParamRegistry& params, const std::string& prefix, int first, int n) {
  std::vector<nn::SwiGluWeights> w;
  for (int e = first; e < first + n; ++e) w.push_back(nn::swiglu_weights(params, prefix + ".experts." + std::to_string(e)));
  return w;
}

Tensor rows(const Tensor& t, std::int64_t width) { return t.view({t.numel() / width, width}); }

/// Int32 / float host vector -> device tensor of @p n entries.
template <typename T>
Tensor up(Ops& ops, const std::vector<T>& v) {
  return ops.upload(Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())}));
}

}  // namespace

std::pair<int, int> experts_of(int experts, int ep, int r) { return {r * (experts / ep), experts / ep}; }

DispatchPlan dispatch_plan(const nn::Routing& r, int ep, std::int64_t slots) {
  const int E = r.experts, El = E / ep;
  DispatchPlan p;
  p.rows_to.assign(ep, 0);
  for (int e = 0; e < E; ++e) p.per_expert.push_back(static_cast<std::int64_t>(r.expert_tokens[e].size()));
  for (int e = 0; e < E; ++e) {  // expert by expert: destination by destination
    const std::int64_t block = slots > 0 ? slots : p.per_expert[e];
    for (std::int64_t i = 0; i < block; ++i) {
      const bool kept = i < p.per_expert[e];  // expert_tokens[e]: its tokens in increasing order
      p.token.push_back(kept ? r.expert_tokens[e][i] : 0);
      p.slot.push_back(kept ? r.expert_slots[e][i] : -1);
      p.real.push_back(kept ? 1.0f : 0.0f);
      p.gate.push_back(kept ? r.gate[r.expert_slots[e][i]] : 0.0f);
    }
    p.rows_to[e / El] += block;
  }
  return p;
}

std::vector<std::int64_t> exchange_counts(Communicator& ep, Ops& ops, const std::vector<std::int64_t>& per_expert) {
  const auto E = static_cast<std::int64_t>(per_expert.size());
  std::vector<std::int32_t> c32(per_expert.begin(), per_expert.end());
  Tensor mine = up(ops, c32), theirs = ops.empty({E}, DType::i32);
  ep.all_to_all(mine, theirs);  // TUTORIAL: block j (rank j's E/ep experts) to rank j; block i from rank i
  const Tensor h = theirs.to(Device::host);
  std::vector<std::int64_t> out(E);
  for (std::int64_t i = 0; i < E; ++i) out[i] = h.at<std::int32_t>(i);
  return out;
}

EpMoeLayer::EpMoeLayer(Ops& ops, Communicator& ep, nn::ParamRegistry& params, const std::string& prefix,
                       const ModelConfig& cfg)
    : ops_(&ops),
      ep_(&ep),
      E_(cfg.experts),
      El_(cfg.experts / ep.size()),
      first_(experts_of(cfg.experts, ep.size(), ep.rank()).first),
      topk_(cfg.topk),
      cf_(cfg.capacity_factor),
      aux_coef_(cfg.aux_coef) {
  FIVEFOLD_CHECK(cfg.experts % ep.size() == 0, "EpMoeLayer: ", cfg.experts, " experts do not split over ", ep.size(),
                 " ranks");
  nn::Param& router = params.get(prefix + ".router.weight");
  w_router_ = router.value;
  dw_router_ = router.grad;
  for (nn::SwiGluWeights& w : local_experts(params, prefix, first_, El_)) experts_.emplace_back(ops, std::move(w));
}

void EpMoeLayer::exchange(Saved& s, const Tensor& in, Tensor& out, bool back) {
  const std::int64_t C = s.x.dim(2);
  const std::vector<std::int64_t>& from = back ? s.recv : s.send;
  const std::vector<std::int64_t>& to = back ? s.send : s.recv;
  std::int64_t n_out = 0;
  for (std::int64_t r : to) n_out += r;
  nn::ensure(*ops_, out, {n_out, C});
  const double t0 = now_seconds();
  TraceSpan span(back ? "all_to_all (combine)" : "all_to_all (dispatch)", "comm");
  if (s.padded) {
    ep_->all_to_all(in, out);  // TUTORIAL: fixed-size blocks: no counts needed
  } else {
    std::vector<std::int64_t> sc, rc;
    for (std::int64_t r : from) sc.push_back(r * C);
    for (std::int64_t r : to) rc.push_back(r * C);
    ep_->all_to_allv(in, sc, out, rc);
  }
  stats_.exchange_seconds += now_seconds() - t0;
}

const Tensor& EpMoeLayer::forward(nn::Acts& a, const Tensor& x, const nn::Pass& pass, nn::KvCache*) {
  Saved& s = static_cast<Saved&>(a);
  last_ = &s;
  const int n = ep_->size();
  const std::int64_t b = x.dim(0), T = x.dim(1), C = x.dim(2), N = b * T;
  s.x = x;
  s.aux_scale = pass.aux_scale;
  nn::ensure(*ops_, s.logits, {N, E_});
  nn::ensure(*ops_, s.probs, {N, E_});
  nn::linear_forward(*ops_, s.logits, x, w_router_);
  ops_->softmax_rows(s.probs, s.logits);
  const double cf = pass.dropless ? 0.0 : cf_;
  std::int64_t seq_len = T;  // the capacity's sequence length
  if (share_) {  // a split sequence (chapter 07): the rest of each sequence is on other ranks
    s.routing = nn::pick_experts(s.probs.to_vector(), E_, topk_);
    const nn::SequenceShare sh = share_(s.routing);
    seq_len = sh.seq_len;
    nn::apply_capacity(s.routing, cf, aux_coef_, sh);
  } else {
    s.routing = nn::route_tokens(s.probs.to_vector(), T, E_, topk_, cf, aux_coef_);  // TUTORIAL: chapter 01's routing
  }
  const nn::Routing& r = s.routing;

  // TUTORIAL: the dispatch permutation: rows by destination, then expert, then token
  s.padded = cf > 0.0 && fixed_buffers_;
  const std::int64_t slots = s.padded ? b * nn::expert_capacity(cf, topk_, seq_len, E_) : 0;
  const DispatchPlan plan = dispatch_plan(r, n, slots);
  const auto total = static_cast<std::int64_t>(plan.token.size());
  s.send = plan.rows_to;
  s.recv_by_expert.assign(static_cast<std::size_t>(n) * El_, slots);  // fixed blocks: known without asking
  if (!s.padded) s.recv_by_expert = exchange_counts(*ep_, *ops_, plan.per_expert);
  s.recv.assign(n, 0);
  for (int i = 0; i < n; ++i)
    for (int e = 0; e < El_; ++e) s.recv[i] += s.recv_by_expert[i * El_ + e];
  s.tok = up(*ops_, plan.token);
  s.real = up(*ops_, plan.real);
  s.gate = up(*ops_, plan.gate);
  s.slot_of = plan.slot;

  // Received rows come source by source; the experts want them expert by expert.
  std::vector<std::int32_t> perm, unperm;
  std::int64_t nrecv = 0;
  for (std::int64_t v : s.recv) nrecv += v;
  unperm.assign(nrecv, 0);
  s.offsets.assign(El_ + 1, 0);
  for (int e = 0; e < El_; ++e) {
    std::int64_t base = 0;
    for (int i = 0; i < n; ++i) {
      std::int64_t off = base;
      for (int e2 = 0; e2 < e; ++e2) off += s.recv_by_expert[i * El_ + e2];
      for (std::int64_t j = 0; j < s.recv_by_expert[i * El_ + e]; ++j) {
        unperm[off + j] = static_cast<std::int32_t>(perm.size());
        perm.push_back(static_cast<std::int32_t>(off + j));
      }
      base += s.recv[i];
    }
    s.offsets[e + 1] = static_cast<std::int64_t>(perm.size());
  }
  s.perm = up(*ops_, perm);
  s.unperm = up(*ops_, unperm);
  stats_.real_rows += static_cast<std::int64_t>(r.tokens * topk_ - r.dropped);
  stats_.buffer_rows += total;
  stats_.received_rows += nrecv;

  nn::ensure(*ops_, s.xs, {total, C});
  if (total > 0) ops_->gather_rows(s.xs, rows(x, C), s.tok, s.real);  // padding rows are zero
  exchange(s, s.xs, s.xr, false);
  nn::ensure(*ops_, s.xe, {nrecv, C});
  nn::ensure(*ops_, s.ye, {nrecv, C});
  s.experts.resize(El_);
  const double t0 = now_seconds();
  if (nrecv > 0) {
    ops_->gather_rows(s.xe, s.xr, s.perm, Tensor());
    for (int e = 0; e < El_; ++e) {  // TUTORIAL: my experts on the rows every rank sent them
      const std::int64_t m = s.offsets[e + 1] - s.offsets[e];
      if (m == 0) continue;
      s.ye.narrow(s.offsets[e], m).copy_from(experts_[e].forward(s.experts[e], s.xe.narrow(s.offsets[e], m), pass, nullptr));
    }
  }
  ops_->synchronize();
  stats_.expert_seconds += now_seconds() - t0;
  nn::ensure(*ops_, s.yr, {nrecv, C});
  if (nrecv > 0) ops_->gather_rows(s.yr, s.ye, s.unperm, Tensor());
  exchange(s, s.yr, s.ys, true);
  nn::ensure(*ops_, s.y, x.shape());
  ops_->fill(s.y, 0.0f);
  Tensor yv = rows(s.y, C);
  if (total > 0) ops_->scatter_add_rows(yv, s.ys, s.tok, s.gate);  // TUTORIAL: combine: y[token] += gate * expert(x)
  return s.y;
}

const Tensor& EpMoeLayer::backward_input(nn::Acts& a, const Tensor& dy) {
  Saved& s = static_cast<Saved&>(a);
  const nn::Routing& r = s.routing;
  const std::int64_t C = s.x.dim(2), N = r.tokens, total = s.xs.dim(0), nrecv = s.xr.dim(0);
  const Tensor dyv = rows(dy, C);
  std::vector<float> dgate(N * topk_, 0.0f);
  nn::ensure(*ops_, s.dys, {total, C});
  nn::ensure(*ops_, s.tmp, {total, C});
  nn::ensure(*ops_, s.dgate_rows, {total});
  if (total > 0) {
    ops_->gather_rows(s.dys, dyv, s.tok, s.gate);  // d expert output = gate * dy
    ops_->gather_rows(s.tmp, dyv, s.tok, s.real);
    ops_->row_dot(s.dgate_rows, s.tmp, s.ys);  // d loss / d gate = dy . expert(x), at home
    const std::vector<float> dg = s.dgate_rows.to_vector();
    for (std::int64_t p = 0; p < total; ++p)
      if (s.slot_of[p] >= 0) dgate[s.slot_of[p]] = dg[p];
  }
  exchange(s, s.dys, s.dyr, false);  // TUTORIAL: the forward's splits: no count exchange
  nn::ensure(*ops_, s.dye, {nrecv, C});
  nn::ensure(*ops_, s.dxe, {nrecv, C});
  const double t0 = now_seconds();
  if (nrecv > 0) {
    ops_->gather_rows(s.dye, s.dyr, s.perm, Tensor());
    for (int e = 0; e < El_; ++e) {
      const std::int64_t m = s.offsets[e + 1] - s.offsets[e];
      if (m == 0) continue;
      s.dxe.narrow(s.offsets[e], m).copy_from(experts_[e].backward_input(s.experts[e], s.dye.narrow(s.offsets[e], m)));
    }
  }
  ops_->synchronize();
  stats_.expert_seconds += now_seconds() - t0;
  nn::ensure(*ops_, s.dxr, {nrecv, C});
  if (nrecv > 0) ops_->gather_rows(s.dxr, s.dxe, s.unperm, Tensor());
  exchange(s, s.dxr, s.dxs, true);
  nn::ensure(*ops_, s.dx, s.x.shape());
  ops_->fill(s.dx, 0.0f);
  Tensor dxv = rows(s.dx, C);
  if (total > 0) ops_->scatter_add_rows(dxv, s.dxs, s.tok, s.real);
  nn::Routing scaled;
  const nn::Routing* rr = &r;
  if (s.aux_scale != 1.0) {  // a rank's sequences are a share of the step's: weigh its aux loss
    scaled = r;
    for (double& d : scaled.aux_dprobs) d *= s.aux_scale;
    rr = &scaled;
  }
  nn::ensure(*ops_, s.dlogits, {N, E_});
  s.dlogits.copy_from(Tensor::from_vector(nn::router_logits_grad(*rr, dgate), {N, E_}));
  nn::linear_backward_input(*ops_, s.dx, s.dlogits, w_router_, /*accumulate=*/true);
  return s.dx;
}

void EpMoeLayer::backward_weight(nn::Acts& a) {
  Saved& s = static_cast<Saved&>(a);
  for (int e = 0; e < El_; ++e)
    if (s.offsets[e + 1] > s.offsets[e]) experts_[e].backward_weight(s.experts[e]);
  nn::linear_backward_weight(*ops_, dw_router_, s.dlogits, s.x);
}

}  // namespace fivefold::ch06
