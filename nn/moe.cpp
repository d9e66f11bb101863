// SPDX-License-Identifier: MIT
// The MoE layer: host-side routing (top-k, capacity, aux loss, router backward) and the
// device-side expert compute (gather, SwiGLU, weighted scatter-add).
#include "nn/moe.hpp"

#include <cmath>

#include "common/check.hpp"

namespace fivefold::nn {

std::int64_t expert_capacity(double capacity_factor, int topk, std::int64_t seq_len, int experts) {
  if (capacity_factor <= 0.0) return seq_len * topk;  // dropless
  return static_cast<std::int64_t>(std::ceil(capacity_factor * topk * static_cast<double>(seq_len) / experts));
}

Routing route_tokens(const std::vector<float>& probs, std::int64_t seq_len, int experts, int topk,
                     double capacity_factor, double aux_coef) {
  const std::int64_t E = experts, k = topk, N = static_cast<std::int64_t>(probs.size()) / E;
  FIVEFOLD_CHECK(N * E == static_cast<std::int64_t>(probs.size()) && N % seq_len == 0 && k >= 1 && k <= E,
                 "route_tokens: ", probs.size(), " probabilities are not N x ", E, " with N a multiple of ", seq_len,
                 ", or top-k ", k, " is not in [1, ", E, "]");
  Routing r;
  r.tokens = N;
  r.experts = experts;
  r.topk = topk;
  r.probs = probs;
  r.choice.resize(N * k);
  r.gate.resize(N * k);
  r.kept.assign(N * k, 0);
  r.expert_tokens.assign(E, {});
  r.expert_slots.assign(E, {});
  r.aux_dprobs.assign(N * E, 0.0);
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
  const std::int64_t cap = expert_capacity(capacity_factor, topk, seq_len, experts);
  const std::int64_t nseq = N / seq_len;
  for (std::int64_t s = 0; s < nseq; ++s) {
    std::vector<std::int64_t> used(E, 0), chosen(E, 0);
    std::vector<double> mean_p(E, 0.0);
    for (std::int64_t i = s * seq_len; i < (s + 1) * seq_len; ++i) {  // increasing token position
      for (std::int64_t j = 0; j < k; ++j) {
        const std::int32_t e = r.choice[i * k + j];
        ++chosen[e];
        if (used[e] < cap) {  // TUTORIAL: first come, first served; over capacity contributes 0
          ++used[e];
          r.kept[i * k + j] = 1;
          r.expert_tokens[e].push_back(static_cast<std::int32_t>(i));
          r.expert_slots[e].push_back(static_cast<std::int32_t>(i * k + j));
        } else {
          ++r.dropped;
        }
      }
      for (std::int64_t e = 0; e < E; ++e) mean_p[e] += probs[i * E + e] / static_cast<double>(seq_len);
    }
    // Switch aux loss of this sequence: coef * E * sum_e f_e P_e; averaged over sequences.
    double aux = 0.0;
    for (std::int64_t e = 0; e < E; ++e) {
      const double f = static_cast<double>(chosen[e]) / static_cast<double>(seq_len * k);
      aux += f * mean_p[e];
      for (std::int64_t i = s * seq_len; i < (s + 1) * seq_len; ++i)
        r.aux_dprobs[i * E + e] = aux_coef * E * f / static_cast<double>(seq_len) / static_cast<double>(nseq);
    }
    r.aux_loss += aux_coef * E * aux / static_cast<double>(nseq);
  }
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

const Tensor& MoeLayer::forward(const Tensor& x) {
  const std::int64_t B = x.dim(0), T = x.dim(1), C = x.dim(2), N = B * T, E = w_router_.dim(0);
  x_ = x;
  ensure(*ops_, logits_, {N, E});
  ensure(*ops_, probs_, {N, E});
  linear_forward(*ops_, logits_, x, w_router_);  // [N, E]
  ops_->softmax_rows(probs_, logits_);
  routing_ = route_tokens(probs_.to_vector(), T, static_cast<int>(E), topk_, capacity_factor_, aux_coef_);
  // One upload of every expert's token list and gates, concatenated; expert e owns rows
  // [offset_e, offset_e + n_e) of the concatenation.
  std::vector<std::int32_t> idx;
  std::vector<float> gates;
  offsets_.assign(E + 1, 0);
  for (std::int64_t e = 0; e < E; ++e) {
    for (std::size_t j = 0; j < routing_.expert_tokens[e].size(); ++j) {
      idx.push_back(routing_.expert_tokens[e][j]);
      gates.push_back(routing_.gate[routing_.expert_slots[e][j]]);
    }
    offsets_[e + 1] = static_cast<std::int64_t>(idx.size());
  }
  const std::int64_t total = offsets_[E];
  ensure(*ops_, y_, x.shape());
  ops_->fill(y_, 0.0f);
  if (total == 0) return y_;
  idx_ = ops_->upload(Tensor::from_vector(idx, {total}));
  gates_ = ops_->upload(Tensor::from_vector(gates, {total}));
  ensure(*ops_, xe_, {total, C});
  ensure(*ops_, ye_, {total, C});
  ops_->gather_rows(xe_, x, idx_, Tensor());  // TUTORIAL: dispatch: each expert's tokens, contiguous
  for (std::int64_t e = 0; e < E; ++e) {
    const std::int64_t n = offsets_[e + 1] - offsets_[e];
    if (n == 0) continue;
    ye_.narrow(offsets_[e], n).copy_from(experts_[e].forward(xe_.narrow(offsets_[e], n)));
  }
  ops_->scatter_add_rows(y_, ye_, idx_, gates_);  // TUTORIAL: combine: y[token] += gate * expert(x)
  return y_;
}

const Tensor& MoeLayer::backward(const Tensor& dy) {
  const std::int64_t N = routing_.tokens, E = routing_.experts, C = x_.dim(2), total = offsets_[E];
  ensure(*ops_, dx_, x_.shape());
  ops_->fill(dx_, 0.0f);
  std::vector<float> dgate(N * topk_, 0.0f);  // dropped slots keep 0
  if (total > 0) {
    ensure(*ops_, dye_, {total, C});
    ensure(*ops_, dxe_, {total, C});
    ensure(*ops_, dgate_, {total});
    ops_->gather_rows(dye_, dy, idx_, Tensor());  // dy of each assignment's token
    ops_->row_dot(dgate_, dye_, ye_);             // d loss / d gate = dy . expert(x)
    ops_->gather_rows(dye_, dy, idx_, gates_);    // d expert output = gate * dy
    for (std::int64_t e = 0; e < E; ++e) {
      const std::int64_t n = offsets_[e + 1] - offsets_[e];
      if (n == 0) continue;
      dxe_.narrow(offsets_[e], n).copy_from(experts_[e].backward(dye_.narrow(offsets_[e], n)));
    }
    ops_->scatter_add_rows(dx_, dxe_, idx_, Tensor());
    const std::vector<float> dg = dgate_.to_vector();
    for (std::int64_t e = 0, r = 0; e < E; ++e)
      for (std::int32_t slot : routing_.expert_slots[e]) dgate[slot] = dg[r++];
  }
  // Router: through the renormalised gates and the aux loss, then the softmax (host, N*E).
  ensure(*ops_, dlogits_, {N, E});
  dlogits_.copy_from(Tensor::from_vector(router_logits_grad(routing_, dgate), {N, E}));
  linear_backward(*ops_, dx_, dw_router_, dlogits_, x_, w_router_, /*accumulate_dx=*/true);
  return dx_;
}

}  // namespace fivefold::nn
