// SPDX-License-Identifier: MIT
// Attention on the GPU with materialised scores, one batch row at a time. cuBLAS is
// column-major and our tensors row-major: a row-major [R, C] matrix with row stride ld is, to
// cuBLAS, its transpose [C, R] with leading dimension ld. So for a (batch, head) pair
//   Q [T, hd] (ld H*hd)   K, V [S, hd] (ld Hkv*hd)   scores P [T, S] (ld S)
// and row-major C = op(A) op(B) is requested as column-major C^T = op(B)^T op(A)^T.
// GQA: query head h = hk * group + g reads kv head hk. One strided-batched call per g covers
// every hk (query-head stride group*hd, kv-head stride hd), so the calls of one group run in
// increasing g, and dk/dv accumulate over the group in the CPU's order.
#include <cublas_v2.h>

#include <cmath>

#include "kernels/attention.hpp"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"

namespace fivefold::kernels {
namespace {

void check_blas(cublasStatus_t rc, const char* what) {
  FIVEFOLD_CHECK(rc == CUBLAS_STATUS_SUCCESS, "cuBLAS ", what, " failed in attention: ", cublasGetStatusString(rc));
}

// One operand of a strided-batched GEMM: pointer, leading dimension, stride between batches.
struct Operand {
  const float* p;
  std::int64_t ld, stride;
};

// Column-major C = alpha op(A) op(B) + beta C for `batch` matrices (C [m, n], k inner).
void gemm(cublasHandle_t h, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
          Operand a, Operand b, float beta, float* c, std::int64_t ldc, std::int64_t stride_c, std::int64_t batch,
          const char* what) {
  check_blas(cublasSgemmStridedBatched(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                       static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), &alpha, a.p,
                                       static_cast<int>(a.ld), a.stride, b.p, static_cast<int>(b.ld), b.stride, &beta,
                                       c, static_cast<int>(ldc), stride_c, static_cast<int>(batch)),
             what);
}

// Row r = h*T + t of the scores [H, T, S] of one batch row: masked softmax in place,
// lse[r] = log sum exp (or -inf and a zero row when no key is visible).
__global__ void masked_softmax_kernel(float* p, float* lse, const std::int32_t* q_pos, const std::int32_t* k_pos,
                                      std::int64_t t, std::int64_t s) {
  __shared__ float buf[33];
  const std::int64_t row = blockIdx.x;
  const std::int32_t qp = q_pos[row % t];
  float* pr = p + row * s;
  float m = -INFINITY;
  for (std::int64_t j = threadIdx.x; j < s; j += blockDim.x)
    if (k_pos[j] <= qp) m = fmaxf(m, pr[j]);  // TUTORIAL: key j visible iff k_pos[j] <= q_pos[t]
  m = block_max(m, buf);
  if (m == -INFINITY) {  // no visible key (block-uniform branch): out 0, lse -inf
    for (std::int64_t j = threadIdx.x; j < s; j += blockDim.x) pr[j] = 0.0f;
    if (threadIdx.x == 0) lse[row] = -INFINITY;
    return;
  }
  float sum = 0.0f;
  for (std::int64_t j = threadIdx.x; j < s; j += blockDim.x) {
    const float e = k_pos[j] <= qp ? expf(__fsub_rn(pr[j], m)) : 0.0f;
    pr[j] = e;
    sum = __fadd_rn(sum, e);
  }
  sum = block_sum(sum, buf);
  if (threadIdx.x == 0) lse[row] = __fadd_rn(m, logf(sum));
  for (std::int64_t j = threadIdx.x; j < s; j += blockDim.x) pr[j] = __fdiv_rn(pr[j], sum);
}

// Backward prologue, row r = h*T + t: P = exp(score - lse) on visible keys (0 elsewhere, and
// everywhere when lse is -inf), and D[r] = sum_d dout[b, t, h, d] * out[b, t, h, d].
__global__ void backward_rows_kernel(float* p, float* dsum, const float* lse, const float* dout, const float* out,
                                     const std::int32_t* q_pos, const std::int32_t* k_pos, std::int64_t t,
                                     std::int64_t s, std::int64_t h, std::int64_t hd) {
  __shared__ float buf[33];
  const std::int64_t row = blockIdx.x, ti = row % t, hi = row / t;
  const std::int32_t qp = q_pos[ti];
  const float l = lse[row];
  float* pr = p + row * s;
  for (std::int64_t j = threadIdx.x; j < s; j += blockDim.x)
    pr[j] = (l != -INFINITY && k_pos[j] <= qp) ? expf(__fsub_rn(pr[j], l)) : 0.0f;
  const float* o = out + (ti * h + hi) * hd;  // this batch row's out, already offset by b
  const float* dO = dout + (ti * h + hi) * hd;
  float acc = 0.0f;
  for (std::int64_t j = threadIdx.x; j < hd; j += blockDim.x) acc = __fadd_rn(acc, __fmul_rn(dO[j], o[j]));
  acc = block_sum(acc, buf);
  if (threadIdx.x == 0) dsum[row] = acc;
}

// dS = P * (dP - D[row]), in place over dP [rows, S].
__global__ void dscores_kernel(float* dp, const float* p, const float* dsum, std::int64_t s, std::int64_t n) {
  for (std::int64_t e = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; e < n;
       e += std::int64_t{gridDim.x} * blockDim.x) {
    dp[e] = __fmul_rn(p[e], __fsub_rn(dp[e], dsum[e / s]));
  }
}

__global__ void merge_kernel(float* out, float* lse, const float* out_b, const float* lse_b, std::int64_t t,
                             std::int64_t h, std::int64_t hd, std::int64_t rows) {
  for (std::int64_t z = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; z < rows;
       z += std::int64_t{gridDim.x} * blockDim.x) {
    const std::int64_t ti = z % t, bh = z / t, hi = bh % h, bi = bh / h;  // lse index z = (b*H + h)*T + t
    const float la = lse[z], lb = lse_b[z];
    float* oa = out + ((bi * t + ti) * h + hi) * hd;
    const float* ob = out_b + ((bi * t + ti) * h + hi) * hd;
    if (lb == -INFINITY) continue;  // nothing new
    if (la == -INFINITY) {
      for (std::int64_t d = 0; d < hd; ++d) oa[d] = ob[d];
      lse[z] = lb;
      continue;
    }
    const float m = la < lb ? lb : la;
    const float l = __fadd_rn(m, logf(__fadd_rn(expf(__fsub_rn(la, m)), expf(__fsub_rn(lb, m)))));
    const float wa = expf(__fsub_rn(la, l)), wb = expf(__fsub_rn(lb, l));  // TUTORIAL: rescale both sides
    for (std::int64_t d = 0; d < hd; ++d) oa[d] = __fadd_rn(__fmul_rn(oa[d], wa), __fmul_rn(ob[d], wb));
    lse[z] = l;
  }
}

__global__ void fill_kernel(float* x, float value, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{gridDim.x} * blockDim.x)
    x[i] = value;
}

void fill_async(float* x, float value, std::int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  fill_kernel<<<grid_for(n), kBlock, 0, s>>>(x, value, n);
  check_launch("attention fill");
}

unsigned score_rows(const AttentionDims& d) {
  FIVEFOLD_CHECK(d.h * d.t <= 0x7fffffff, "attention: ", d.h * d.t, " score rows exceed one grid");
  return static_cast<unsigned>(d.h * d.t);
}

// Scores of batch row b for every head: P[h] = scale * Q_h K_{h/group}^T, [H, T, S].
void scores(cublasHandle_t blas, const float* q, const float* k, float* p, const AttentionDims& d, std::int64_t b,
            float scale) {
  const std::int64_t group = d.h / d.hkv, ts = d.t * d.s;
  const float* kb = k + b * d.s * d.hkv * d.hd;
  for (std::int64_t g = 0; g < group; ++g) {
    const float* qb = q + (b * d.t * d.h + g) * d.hd;
    // column-major P^T [S, T] = K_cm^T [S, hd] x Q_cm [hd, T]
    gemm(blas, true, false, d.s, d.t, d.hd, scale, {kb, d.hkv * d.hd, d.hd}, {qb, d.h * d.hd, group * d.hd}, 0.0f,
         p + g * ts, d.s, group * ts, d.hkv, "Q K^T");
  }
}

}  // namespace

std::int64_t attention_forward_scratch(const AttentionDims& d) { return d.h * d.t * d.s; }

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const std::int32_t* q_pos, const std::int32_t* k_pos, const AttentionDims& d, float* scratch,
                       void* cublas, void* stream) {
  if (d.b <= 0 || d.t <= 0 || d.h <= 0) return;
  cudaStream_t st = as_stream(stream);
  if (d.s <= 0) {  // no keys at all
    fill_async(out, 0.0f, d.b * d.t * d.h * d.hd, st);
    fill_async(lse, -INFINITY, d.b * d.h * d.t, st);
    return;
  }
  auto blas = static_cast<cublasHandle_t>(cublas);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d.hd));
  const std::int64_t group = d.h / d.hkv, ts = d.t * d.s;
  for (std::int64_t b = 0; b < d.b; ++b) {
    scores(blas, q, k, scratch, d, b, scale);
    masked_softmax_kernel<<<score_rows(d), row_threads(d.s), 0, st>>>(scratch, lse + b * d.h * d.t, q_pos, k_pos,
                                                                      d.t, d.s);
    check_launch("attention masked_softmax");
    const float* vb = v + b * d.s * d.hkv * d.hd;
    for (std::int64_t g = 0; g < group; ++g) {
      // column-major O^T [hd, T] = V_cm [hd, S] x P_cm [S, T]
      gemm(blas, false, false, d.hd, d.t, d.s, 1.0f, {vb, d.hkv * d.hd, d.hd}, {scratch + g * ts, d.s, group * ts},
           0.0f, out + (b * d.t * d.h + g) * d.hd, d.h * d.hd, group * d.hd, d.hkv, "P V");
    }
  }
}

std::int64_t attention_backward_scratch(const AttentionDims& d) { return 2 * d.h * d.t * d.s + d.h * d.t; }

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const std::int32_t* q_pos,
                        const std::int32_t* k_pos, const AttentionDims& d, float* scratch, void* cublas,
                        void* stream) {
  if (d.b <= 0 || d.t <= 0 || d.s <= 0 || d.h <= 0 || d.hd <= 0) return;  // nothing to accumulate
  cudaStream_t st = as_stream(stream);
  auto blas = static_cast<cublasHandle_t>(cublas);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d.hd));
  const std::int64_t group = d.h / d.hkv, ts = d.t * d.s, kv_ld = d.hkv * d.hd, q_ld = d.h * d.hd;
  float* p = scratch;              // [H, T, S] probabilities
  float* dp = scratch + d.h * ts;  // [H, T, S] dP, then dS
  float* dsum = dp + d.h * ts;     // [H, T] rowsum(dout * out)
  for (std::int64_t b = 0; b < d.b; ++b) {
    const std::int64_t qoff = b * d.t * d.h * d.hd, kvoff = b * d.s * d.hkv * d.hd;
    scores(blas, q, k, p, d, b, scale);
    backward_rows_kernel<<<score_rows(d), row_threads(d.s), 0, st>>>(p, dsum, lse + b * d.h * d.t, dout + qoff,
                                                                     out + qoff, q_pos, k_pos, d.t, d.s, d.h, d.hd);
    check_launch("attention backward_rows");
    for (std::int64_t g = 0; g < group; ++g) {
      const Operand dO{dout + qoff + g * d.hd, q_ld, group * d.hd}, P{p + g * ts, d.s, group * ts};
      // dV += P^T dO:  column-major dV^T [hd, S] += dO_cm [hd, T] x (P_cm)^T [T, S]
      gemm(blas, false, true, d.hd, d.s, d.t, 1.0f, dO, P, 1.0f, dv + kvoff, kv_ld, d.hd, d.hkv, "dV += P^T dO");
      // dP = dO V^T:   column-major dP^T [S, T] = V_cm^T [S, hd] x dO_cm [hd, T]
      gemm(blas, true, false, d.s, d.t, d.hd, 1.0f, {v + kvoff, kv_ld, d.hd}, dO, 0.0f, dp + g * ts, d.s, group * ts,
           d.hkv, "dP = dO V^T");
    }
    const std::int64_t n = d.h * ts;
    dscores_kernel<<<grid_for(n), kBlock, 0, st>>>(dp, p, dsum, d.s, n);  // TUTORIAL: dS = P (dP - D)
    check_launch("attention dscores");
    for (std::int64_t g = 0; g < group; ++g) {
      const Operand dS{dp + g * ts, d.s, group * ts};
      // dQ += scale dS K:   column-major dQ^T [hd, T] += K_cm [hd, S] x dS_cm [S, T]
      gemm(blas, false, false, d.hd, d.t, d.s, scale, {k + kvoff, kv_ld, d.hd}, dS, 1.0f, dq + qoff + g * d.hd, q_ld,
           group * d.hd, d.hkv, "dQ += dS K");
      // dK += scale dS^T Q:  column-major dK^T [hd, S] += Q_cm [hd, T] x (dS_cm)^T [T, S]
      gemm(blas, false, true, d.hd, d.s, d.t, scale, {q + qoff + g * d.hd, q_ld, group * d.hd}, dS, 1.0f, dk + kvoff,
           kv_ld, d.hd, d.hkv, "dK += dS^T Q");
    }
  }
}

void attention_merge(float* out, float* lse, const float* out_b, const float* lse_b, std::int64_t b, std::int64_t t,
                     std::int64_t h, std::int64_t hd, void* stream) {
  const std::int64_t rows = b * t * h;
  if (rows <= 0) return;
  merge_kernel<<<grid_for(rows), kBlock, 0, as_stream(stream)>>>(out, lse, out_b, lse_b, t, h, hd, rows);
  check_launch("attention_merge");
}

}  // namespace fivefold::kernels
