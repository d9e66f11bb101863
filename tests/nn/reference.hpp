// SPDX-License-Identifier: MIT
/// @file reference.hpp
/// @brief An independent double-precision reference of the model (docs/reference.md) for the tests:
/// plain loops
/// over std::vector<double>, written from the contract text, sharing no code with nn/
/// or the Ops. The gradient checks differentiate it by central finite differences.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "common/model_config.hpp"
#include "common/tensor.hpp"

namespace fivefold::ref {

/// A flat row-major double array.
using Vec = std::vector<double>;
/// Integer vector (tokens, positions).
using IVec = std::vector<int>;

/// Double copy of an fp32 tensor (any device).
inline Vec to_double(const Tensor& t) {
  const std::vector<float> f = t.to_vector();
  return Vec(f.begin(), f.end());
}

/// y[n, o] = sum_i x[n, i] w[o, i].
inline Vec linear(const Vec& x, std::int64_t N, std::int64_t in, const Vec& w, std::int64_t out) {
  Vec y(N * out, 0.0);
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t o = 0; o < out; ++o) {
      double s = 0.0;
      for (std::int64_t i = 0; i < in; ++i) s += x[n * in + i] * w[o * in + i];
      y[n * out + o] = s;
    }
  return y;
}

/// x / sqrt(mean(x^2) + eps) * w per row of C.
inline Vec rmsnorm(const Vec& x, std::int64_t C, const Vec& w, double eps) {
  Vec y(x.size());
  for (std::size_t r = 0; r < x.size() / C; ++r) {
    double ms = 0.0;
    for (std::int64_t c = 0; c < C; ++c) ms += x[r * C + c] * x[r * C + c];
    const double inv = 1.0 / std::sqrt(ms / C + eps);
    for (std::int64_t c = 0; c < C; ++c) y[r * C + c] = x[r * C + c] * inv * w[c];
  }
  return y;
}

/// RoPE in the contract's form x*cos + rotate_half(x)*sin on x [B, T, nh, hd].
inline void rope(Vec& x, std::int64_t B, std::int64_t T, std::int64_t nh, std::int64_t hd, const IVec& pos,
                 double theta) {
  const std::int64_t half = hd / 2;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t h = 0; h < nh; ++h) {
        double* v = &x[((b * T + t) * nh + h) * hd];
        Vec rot(hd), cs(hd), sn(hd);
        for (std::int64_t i = 0; i < hd; ++i) {
          const double f = pos[t] * std::pow(theta, -2.0 * static_cast<double>(i % half) / hd);
          cs[i] = std::cos(f);
          sn[i] = std::sin(f);
          rot[i] = i < half ? -v[i + half] : v[i - half];
        }
        for (std::int64_t i = 0; i < hd; ++i) v[i] = v[i] * cs[i] + rot[i] * sn[i];
      }
}

/// Causal attention with positions and GQA; q [B,T,H,hd], k/v [B,S,Hkv,hd] -> [B,T,H,hd].
/// @p lse, when given, receives [B,H,T] (-inf for a row with no visible key, whose output is 0).
inline Vec attention(const Vec& q, const Vec& k, const Vec& v, std::int64_t B, std::int64_t T, std::int64_t S,
                     std::int64_t H, std::int64_t Hkv, std::int64_t hd, const IVec& qpos, const IVec& kpos,
                     Vec* lse = nullptr) {
  Vec out(B * T * H * hd, 0.0);
  if (lse) lse->assign(B * H * T, 0.0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h) {
      const std::int64_t g = h / (H / Hkv);
      for (std::int64_t t = 0; t < T; ++t) {
        Vec sc;
        IVec keys;
        for (std::int64_t s = 0; s < S; ++s) {
          if (kpos[s] > qpos[t]) continue;
          double d = 0.0;
          for (std::int64_t i = 0; i < hd; ++i) d += q[((b * T + t) * H + h) * hd + i] * k[((b * S + s) * Hkv + g) * hd + i];
          sc.push_back(d / std::sqrt(static_cast<double>(hd)));
          keys.push_back(static_cast<int>(s));
        }
        if (keys.empty()) {
          if (lse) (*lse)[(b * H + h) * T + t] = -std::numeric_limits<double>::infinity();
          continue;
        }
        const double m = *std::max_element(sc.begin(), sc.end());
        double z = 0.0;
        for (double s : sc) z += std::exp(s - m);
        if (lse) (*lse)[(b * H + h) * T + t] = m + std::log(z);
        for (std::size_t j = 0; j < keys.size(); ++j) {
          const double p = std::exp(sc[j] - m) / z;
          for (std::int64_t i = 0; i < hd; ++i)
            out[((b * T + t) * H + h) * hd + i] += p * v[((b * S + keys[j]) * Hkv + g) * hd + i];
        }
      }
    }
  return out;
}

/// down(silu(gate(x)) * up(x)) on rows of C.
inline Vec swiglu_mlp(const Vec& x, std::int64_t N, std::int64_t C, std::int64_t F, const Vec& wg, const Vec& wu,
                      const Vec& wd) {
  const Vec g = linear(x, N, C, wg, F), u = linear(x, N, C, wu, F);
  Vec h(N * F);
  for (std::int64_t i = 0; i < N * F; ++i) h[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
  return linear(h, N, F, wd, C);
}

/// Result of the reference MoE layer.
struct MoeOut {
  Vec y;                 ///< [N, C]
  double aux = 0.0;      ///< aux loss (mean over sequences)
  IVec choice;           ///< [N, k] picked experts
  IVec kept;             ///< [N, k] within capacity
};

/// MoE layer of the reference model on x [B, T, C]; experts[e] = {gate, up, down}.
inline MoeOut moe(const Vec& x, std::int64_t B, std::int64_t T, std::int64_t C, std::int64_t F, int E, int k,
                  double cf, double aux_coef, const Vec& router, const std::vector<std::array<Vec, 3>>& experts) {
  const std::int64_t N = B * T;
  MoeOut r;
  r.y.assign(N * C, 0.0);
  r.choice.assign(N * k, 0);
  r.kept.assign(N * k, 0);
  const Vec logits = linear(x, N, C, router, E);
  Vec p(N * E);
  for (std::int64_t n = 0; n < N; ++n) {
    double m = -1e300, z = 0.0;
    for (int e = 0; e < E; ++e) m = std::max(m, logits[n * E + e]);
    for (int e = 0; e < E; ++e) z += std::exp(logits[n * E + e] - m);
    for (int e = 0; e < E; ++e) p[n * E + e] = std::exp(logits[n * E + e] - m) / z;
  }
  const std::int64_t cap = cf > 0 ? static_cast<std::int64_t>(std::ceil(cf * k * static_cast<double>(T) / E)) : N * k;
  for (std::int64_t b = 0; b < B; ++b) {
    IVec used(E, 0), chosen(E, 0);
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int64_t n = b * T + t;
      IVec order(E);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int c) { return p[n * E + a] > p[n * E + c]; });
      double z = 0.0;
      for (int j = 0; j < k; ++j) z += p[n * E + order[j]];
      for (int j = 0; j < k; ++j) {
        const int e = order[j];
        r.choice[n * k + j] = e;
        ++chosen[e];
        if (used[e] >= cap) continue;
        ++used[e];
        r.kept[n * k + j] = 1;
        const Vec row(x.begin() + n * C, x.begin() + (n + 1) * C);
        const Vec ye = swiglu_mlp(row, 1, C, F, experts[e][0], experts[e][1], experts[e][2]);
        for (std::int64_t c = 0; c < C; ++c) r.y[n * C + c] += p[n * E + e] / z * ye[c];
      }
    }
    double s = 0.0;
    for (int e = 0; e < E; ++e) {
      double pe = 0.0;
      for (std::int64_t t = 0; t < T; ++t) pe += p[(b * T + t) * E + e] / T;
      s += static_cast<double>(chosen[e]) / static_cast<double>(T * k) * pe;
    }
    r.aux += aux_coef * E * s / B;
  }
  return r;
}

/// Mean over rows of logsumexp(logits) - logits[target].
inline double cross_entropy(const Vec& logits, std::int64_t N, std::int64_t V, const IVec& targets) {
  double total = 0.0;
  for (std::int64_t n = 0; n < N; ++n) {
    double m = -1e300, z = 0.0;
    for (std::int64_t v = 0; v < V; ++v) m = std::max(m, logits[n * V + v]);
    for (std::int64_t v = 0; v < V; ++v) z += std::exp(logits[n * V + v] - m);
    total += m + std::log(z) - logits[n * V + targets[n]];
  }
  return total / N;
}

/// Central finite differences of @p f with respect to every element of @p x (restored after).
inline Vec fd_grad(Vec& x, const std::function<double()>& f, double h = 1e-5) {
  Vec g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double fp = f();
    x[i] = x0 - h;
    const double fm = f();
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/// ||a - b|| / ||b|| (or ||a - b|| when ||b|| is 0).
inline double rel_l2(const Vec& a, const Vec& b) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace fivefold::ref
