// SPDX-License-Identifier: MIT
// The MoE layer: host-side routing (top-k, capacity, aux loss, router backward) and the
// device-side expert compute (gather, SwiGLU, weighted scatter-add).
#include "nn/moe.hpp"

#include <algorithm>
#include <cmath>

#include "common/check.hpp"

namespace fivefold::nn {

std::int64_t expert_capacity(double capacity_factor, int topk, std::int64_t seq_len, int experts) {
  if (capacity_factor <= 0.0) return seq_len * topk;  // dropless
  return static_cast<std::int64_t>(std::ceil(capacity_factor * topk * static_cast<double>(seq_len) / experts));
}

Routing pick_experts(const std::vector<float>& probs, int experts, int topk) {
  const std::int64_t E = experts, k = topk, N = static_cast<std::int64_t>(probs.size()) / E;
  FIVEFOLD_CHECK(N * E == static_cast<std::int64_t>(probs.size()) && k >= 1 && k <= E, "route_tokens: ", probs.size(),
                 " probabilities are not N x ", E, ", or top-k ", k, " is not in [1, ", E, "]");
  Routing r;
  r.tokens = N;
  r.experts = experts;
  r.topk = topk;
  r.probs = probs;
  r.choice.resize(N * k);
  r.gate.resize(N * k);
  for (std::int64_t i = 0; i < N; ++i) {  // top-k by probability, ties -> lower expert index
    const float* p = &probs[i * E];
    std::vector<bool> taken(E, false);
    double sum = 0.0;
    for (std::int64_t j = 0; j < k; ++j) {
      std::int64_t best = -1;
      for (std::int64_t e = 0; e < E; ++e)
        if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;
      taken[best] = true;
      r.choice[i * k + j] = static_cast<std::int32_t>(best);
      sum += p[best];
    }
    for (std::int64_t j = 0; j < k; ++j) r.gate[i * k + j] = static_cast<float>(p[r.choice[i * k + j]] / sum);
  }
  return r;
}

SegmentCounts segment_counts(const Routing& r, const std::vector<std::int64_t>& segments) {
  const std::int64_t E = r.experts, k = r.topk, G = static_cast<std::int64_t>(segments.size());
  std::int64_t Tl = 0;
  for (std::int64_t g : segments) Tl += g;
  FIVEFOLD_CHECK(Tl > 0 && r.tokens % Tl == 0, "segment_counts: ", r.tokens, " tokens are not whole sequences of ", Tl);
  const std::int64_t b = r.tokens / Tl;
  SegmentCounts out;
  out.chosen.assign(b * G * E, 0);
  out.prob_sum.assign(b * G * E, 0.0);
  for (std::int64_t s = 0, i = 0; s < b; ++s)
    for (std::int64_t g = 0; g < G; ++g)
      for (std::int64_t t = 0; t < segments[g]; ++t, ++i) {
        const std::int64_t at = (s * G + g) * E;
        for (std::int64_t e = 0; e < E; ++e) out.prob_sum[at + e] += r.probs[i * E + e];
        for (std::int64_t j = 0; j < k; ++j) ++out.chosen[at + r.choice[i * k + j]];
      }
  return out;
}

void apply_capacity(Routing& r, double capacity_factor, double aux_coef, const SequenceShare& share) {
  const std::int64_t E = r.experts, k = r.topk, N = r.tokens, T = share.seq_len;
  const std::int64_t G = static_cast<std::int64_t>(share.segments.size());
  std::int64_t Tl = 0;
  for (std::int64_t g : share.segments) Tl += g;
  const std::int64_t nseq = N / Tl;
  FIVEFOLD_CHECK(nseq * Tl == N && static_cast<std::int64_t>(share.before.size()) == nseq * G * E &&
                     static_cast<std::int64_t>(share.chosen.size()) == nseq * E &&
                     static_cast<std::int64_t>(share.prob_sum.size()) == nseq * E,
                 "apply_capacity: a share of ", share.before.size(), " counts for ", nseq, " sequences of ", G,
                 " segments and ", E, " experts");
  r.kept.assign(N * k, 0);
  r.expert_tokens.assign(E, {});
  r.expert_slots.assign(E, {});
  r.aux_dprobs.assign(N * E, 0.0);
  r.aux_loss = 0.0;
  r.dropped = 0;
  const std::int64_t cap = expert_capacity(capacity_factor, r.topk, T, r.experts);
  for (std::int64_t s = 0, i = 0; s < nseq; ++s) {
    const std::int64_t* chosen = &share.chosen[s * E];  // the whole sequence's
    std::vector<double> mean_p(E);
    for (std::int64_t e = 0; e < E; ++e) mean_p[e] = share.prob_sum[s * E + e] / static_cast<double>(T);
    const std::int64_t first = i;
    for (std::int64_t g = 0; g < G; ++g) {
      std::vector<std::int64_t> used(E);  // TUTORIAL: what the earlier positions of the sequence already took
      for (std::int64_t e = 0; e < E; ++e) used[e] = std::min(share.before[(s * G + g) * E + e], cap);
      for (std::int64_t t = 0; t < share.segments[g]; ++t, ++i) {  // increasing token position
        for (std::int64_t j = 0; j < k; ++j) {
          const std::int32_t e = r.choice[i * k + j];
          if (used[e] < cap) {  // TUTORIAL: first come, first served; over capacity contributes 0
            ++used[e];
            r.kept[i * k + j] = 1;
            r.expert_tokens[e].push_back(static_cast<std::int32_t>(i));
            r.expert_slots[e].push_back(static_cast<std::int32_t>(i * k + j));
          } else {
            ++r.dropped;
          }
        }
      }
    }
    // Switch aux loss of this sequence: coef * E * sum_e f_e P_e; averaged over sequences.
    double aux = 0.0;
    for (std::int64_t e = 0; e < E; ++e) {
      const double f = static_cast<double>(chosen[e]) / static_cast<double>(T * k);
      aux += f * mean_p[e];
      for (std::int64_t t = first; t < first + Tl; ++t)
        r.aux_dprobs[t * E + e] = aux_coef * E * f / static_cast<double>(T) / static_cast<double>(nseq);
    }
    r.aux_loss += share.aux_share * aux_coef * E * aux / static_cast<double>(nseq);
  }
}

Routing route_tokens(const std::vector<float>& probs, std::int64_t seq_len, int experts, int topk,
                     double capacity_factor, double aux_coef) {
  FIVEFOLD_CHECK(seq_len > 0 && static_cast<std::int64_t>(probs.size()) % (seq_len * experts) == 0, "route_tokens: ",
                 probs.size(), " probabilities are not N x ", experts, " with N a multiple of ", seq_len);
  Routing r = pick_experts(probs, experts, topk);
  // Whole sequences: one segment each, nothing before it, its own totals.
  const SegmentCounts own = segment_counts(r, {seq_len});
  SequenceShare whole;
  whole.seq_len = seq_len;
  whole.segments = {seq_len};
  whole.before.assign(own.chosen.size(), 0);
  whole.chosen = own.chosen;
  whole.prob_sum = own.prob_sum;
  apply_capacity(r, capacity_factor, aux_coef, whole);
  return r;
}

std::vector<float> router_logits_grad(const Routing& r, const std::vector<float>& dgate) {
  const std::int64_t E = r.experts, k = r.topk;
  std::vector<float> out(r.tokens * E);
  std::vector<double> dp(E);
  for (std::int64_t i = 0; i < r.tokens; ++i) {
    for (std::int64_t e = 0; e < E; ++e) dp[e] = r.aux_dprobs[i * E + e];
    // gate_j = p_j / S over the picked: d p_m += (dgate_m - sum_j dgate_j gate_j) / S.
    double sum_p = 0.0, dot = 0.0;
    for (std::int64_t j = 0; j < k; ++j) {
      sum_p += r.probs[i * E + r.choice[i * k + j]];
      dot += static_cast<double>(dgate[i * k + j]) * r.gate[i * k + j];
    }
    for (std::int64_t j = 0; j < k; ++j) dp[r.choice[i * k + j]] += (dgate[i * k + j] - dot) / sum_p;
    // softmax backward: dlogit_e = p_e (dp_e - sum_e' p_e' dp_e').
    double pdp = 0.0;
    for (std::int64_t e = 0; e < E; ++e) pdp += r.probs[i * E + e] * dp[e];
    for (std::int64_t e = 0; e < E; ++e) out[i * E + e] = static_cast<float>(r.probs[i * E + e] * (dp[e] - pdp));
  }
  return out;
}

MoeLayer::MoeLayer(Ops& ops, Param& router, std::vector<SwiGluWeights> experts, int topk, double capacity_factor,
                   double aux_coef)
    : ops_(&ops), w_router_(router.value), dw_router_(router.grad), topk_(topk),
      capacity_factor_(capacity_factor), aux_coef_(aux_coef) {
  FIVEFOLD_CHECK(static_cast<std::int64_t>(experts.size()) == router.value.dim(0), "MoeLayer: router ",
                 router.value.str(), " does not match ", experts.size(), " experts");
  for (SwiGluWeights& w : experts) experts_.emplace_back(ops, std::move(w));
}

namespace {
std::vector<SwiGluWeights> expert_weights(ParamRegistry& reg, const std::string& prefix, int experts) {
  std::vector<SwiGluWeights> out;
  for (int e = 0; e < experts; ++e) out.push_back(swiglu_weights(reg, prefix + ".experts." + std::to_string(e)));
  return out;
}
}  // namespace

MoeLayer::MoeLayer(Ops& ops, ParamRegistry& reg, const std::string& prefix, int experts, int topk,
                   double capacity_factor, double aux_coef)
    : MoeLayer(ops, reg.get(prefix + ".router.weight"), expert_weights(reg, prefix, experts), topk, capacity_factor,
               aux_coef) {}

const Tensor& MoeLayer::forward(Acts& a, const Tensor& x, const Pass& pass, KvCache*) {
  Saved& s = static_cast<Saved&>(a);
  last_ = &s;
  const std::int64_t T = x.dim(1), C = x.dim(2), N = x.dim(0) * T, E = w_router_.dim(0);
  s.x = x;
  s.aux_scale = pass.aux_scale;
  ensure(*ops_, s.logits, {N, E});
  ensure(*ops_, s.probs, {N, E});
  linear_forward(*ops_, s.logits, x, w_router_);  // [N, E]
  ops_->softmax_rows(s.probs, s.logits);
  const double cf = pass.dropless ? 0.0 : capacity_factor_;
  s.routing = route_tokens(s.probs.to_vector(), T, static_cast<int>(E), topk_, cf, aux_coef_);
  const Routing& r = s.routing;
  // One upload of every expert's token list and gates, concatenated; expert e owns rows
  // [offset_e, offset_e + n_e) of the concatenation.
  std::vector<std::int32_t> idx;
  std::vector<float> gates;
  s.offsets.assign(E + 1, 0);
  for (std::int64_t e = 0; e < E; ++e) {
    for (std::size_t j = 0; j < r.expert_tokens[e].size(); ++j) {
      idx.push_back(r.expert_tokens[e][j]);
      gates.push_back(r.gate[r.expert_slots[e][j]]);
    }
    s.offsets[e + 1] = static_cast<std::int64_t>(idx.size());
  }
  const std::int64_t total = s.offsets[E];
  ensure(*ops_, s.y, x.shape());
  ops_->fill(s.y, 0.0f);
  if (total == 0) return s.y;
  s.idx = ops_->upload(Tensor::from_vector(idx, {total}));
  s.gates = ops_->upload(Tensor::from_vector(gates, {total}));
  ensure(*ops_, s.xe, {total, C});
  ensure(*ops_, s.ye, {total, C});
  s.experts.resize(E);
  ops_->gather_rows(s.xe, x, s.idx, Tensor());  // TUTORIAL: dispatch: each expert's tokens, contiguous
  for (std::int64_t e = 0; e < E; ++e) {
    const std::int64_t n = s.offsets[e + 1] - s.offsets[e];
    if (n == 0) continue;
    s.ye.narrow(s.offsets[e], n).copy_from(experts_[e].forward(s.experts[e], s.xe.narrow(s.offsets[e], n), pass, nullptr));
  }
  ops_->scatter_add_rows(s.y, s.ye, s.idx, s.gates);  // TUTORIAL: combine: y[token] += gate * expert(x)
  return s.y;
}

const Tensor& MoeLayer::backward_input(Acts& a, const Tensor& dy) {
  Saved& s = static_cast<Saved&>(a);
  const Routing& r = s.routing;
  const std::int64_t N = r.tokens, E = r.experts, C = s.x.dim(2), total = s.offsets[E];
  ensure(*ops_, s.dx, s.x.shape());
  ops_->fill(s.dx, 0.0f);
  std::vector<float> dgate(N * topk_, 0.0f);  // dropped slots keep 0
  if (total > 0) {
    ensure(*ops_, s.dye, {total, C});
    ensure(*ops_, s.dxe, {total, C});
    ensure(*ops_, s.dgate, {total});
    ops_->gather_rows(s.dye, dy, s.idx, Tensor());  // dy of each assignment's token
    ops_->row_dot(s.dgate, s.dye, s.ye);            // d loss / d gate = dy . expert(x)
    ops_->gather_rows(s.dye, dy, s.idx, s.gates);   // d expert output = gate * dy
    for (std::int64_t e = 0; e < E; ++e) {
      const std::int64_t n = s.offsets[e + 1] - s.offsets[e];
      if (n == 0) continue;
      s.dxe.narrow(s.offsets[e], n).copy_from(experts_[e].backward_input(s.experts[e], s.dye.narrow(s.offsets[e], n)));
    }
    ops_->scatter_add_rows(s.dx, s.dxe, s.idx, Tensor());
    const std::vector<float> dg = s.dgate.to_vector();
    for (std::int64_t e = 0, i = 0; e < E; ++e)
      for (std::int32_t slot : r.expert_slots[e]) dgate[slot] = dg[i++];
  }
  // Router: through the renormalised gates and the aux loss, then the softmax (host, N*E). A pass
  // that is one piece of a larger step weighs its aux loss by aux_scale.
  Routing scaled;
  const Routing* rr = &r;
  if (s.aux_scale != 1.0) {
    scaled = r;
    for (double& d : scaled.aux_dprobs) d *= s.aux_scale;
    rr = &scaled;
  }
  ensure(*ops_, s.dlogits, {N, E});
  s.dlogits.copy_from(Tensor::from_vector(router_logits_grad(*rr, dgate), {N, E}));
  linear_backward_input(*ops_, s.dx, s.dlogits, w_router_, /*accumulate=*/true);
  return s.dx;
}

void MoeLayer::backward_weight(Acts& a) {
  Saved& s = static_cast<Saved&>(a);
  const std::int64_t E = s.routing.experts;
  for (std::int64_t e = 0; e < E; ++e)
    if (s.offsets[e + 1] > s.offsets[e]) experts_[e].backward_weight(s.experts[e]);
  linear_backward_weight(*ops_, dw_router_, s.dlogits, s.x);
}

const Tensor& MoeLayer::backward(const Tensor& dy) {
  const Tensor& dx = backward_input(own_, dy);
  backward_weight(own_);
  return dx;
}

}  // namespace fivefold::nn
