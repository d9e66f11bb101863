// SPDX-License-Identifier: MIT
// The model's elementwise kernels: product, SwiGLU, AdamW and RoPE as grid-stride loops (one
// thread per element or per rotated pair), row gather as one thread per output element, and a
// deterministic scatter-add. What it leaves out: vectorised loads and fusion.
//
// Scatter-add without atomics: thread (column j, partition p) walks every index i in
// increasing order and adds row i into dst[index[i], j] when index[i] % P == p. Each
// destination element therefore has exactly one writer, and sums in the CPU's order; the P
// partitions give parallelism over destination rows (embedding rows, MoE tokens).
#include <cmath>

#include "kernels/launch.cuh"
#include "kernels/model_ops.hpp"
#include "kernels/reduce.cuh"

namespace fivefold::kernels {
namespace {

#define FIVEFOLD_GRID_STRIDE(i, n)                                                         \
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < (n); \
       i += std::int64_t{gridDim.x} * blockDim.x)

__global__ void mul_kernel(float* y, const float* a, const float* b, std::int64_t n) {
  FIVEFOLD_GRID_STRIDE(i, n) { y[i] = __fmul_rn(a[i], b[i]); }
}

__global__ void swiglu_forward_kernel(float* h, const float* g, const float* u, std::int64_t n) {
  FIVEFOLD_GRID_STRIDE(i, n) {
    const float z = g[i];
    h[i] = __fmul_rn(__fdiv_rn(z, __fadd_rn(1.0f, expf(-z))), u[i]);  // TUTORIAL: silu(g) * u
  }
}

__global__ void swiglu_backward_kernel(float* dg, float* du, const float* dh, const float* g, const float* u,
                                       std::int64_t n) {
  FIVEFOLD_GRID_STRIDE(i, n) {
    const float z = g[i], d = dh[i];
    const float s = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-z)));
    du[i] = __fmul_rn(__fmul_rn(d, z), s);
    const float dsilu = __fadd_rn(1.0f, __fmul_rn(z, __fsub_rn(1.0f, s)));  // silu'(g) / s
    dg[i] = __fmul_rn(__fmul_rn(__fmul_rn(d, u[i]), s), dsilu);
  }
}

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, std::int64_t n, AdamWScalars s) {
  FIVEFOLD_GRID_STRIDE(i, n) {
    const float gi = g[i];
    const float pi = __fmul_rn(p[i], s.decay);  // decoupled weight decay
    const float mi = __fadd_rn(__fmul_rn(s.beta1, m[i]), __fmul_rn(s.one_minus_beta1, gi));
    const float vi = __fadd_rn(__fmul_rn(s.beta2, v[i]), __fmul_rn(__fmul_rn(s.one_minus_beta2, gi), gi));
    const float denom = __fadd_rn(__fdiv_rn(sqrtf(vi), s.bc2_sqrt), s.eps);
    p[i] = __fsub_rn(pi, __fdiv_rn(__fmul_rn(s.step_size, mi), denom));
    m[i] = mi;
    v[i] = vi;
  }
}

// cs[t, i] = cos(pos[t] * theta^(-2i/hd)), sn[t, i] = +-sin(...), in double, rounded once.
__global__ void rope_table_kernel(float* cs, float* sn, const std::int32_t* pos, std::int64_t t, std::int64_t hd,
                                  double theta, bool inverse) {
  const std::int64_t half = hd / 2;
  FIVEFOLD_GRID_STRIDE(e, t * half) {
    const std::int64_t ti = e / half, i = e % half;
    const double angle = static_cast<double>(pos[ti]) * pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
    const double sine = sin(angle);
    cs[e] = static_cast<float>(cos(angle));
    sn[e] = static_cast<float>(inverse ? -sine : sine);
  }
}

// One thread per rotated pair (x[i], x[i + hd/2]) of every (b, t, head).
__global__ void rope_apply_kernel(float* x, const float* cs, const float* sn, std::int64_t t, std::int64_t nh,
                                  std::int64_t hd, std::int64_t pairs) {
  const std::int64_t half = hd / 2;
  FIVEFOLD_GRID_STRIDE(e, pairs) {
    const std::int64_t i = e % half, row = e / half;  // row = (b*T + t)*nh + h
    const std::int64_t ti = (row / nh) % t;
    float* r = x + row * hd;
    const float c = cs[ti * half + i], s = sn[ti * half + i];
    const float x1 = r[i], x2 = r[i + half];
    r[i] = __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s));
    r[i + half] = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s));
  }
}

__global__ void gather_rows_kernel(float* out, const float* src, const std::int32_t* index, const float* weight,
                                   std::int64_t n, std::int64_t c, std::int64_t r) {
  FIVEFOLD_GRID_STRIDE(e, n * c) {
    const std::int64_t i = e / c, j = e % c;
    const std::int32_t k = index[i];
    const float v = (k >= 0 && k < r) ? src[k * c + j] : NAN;
    out[e] = weight ? __fmul_rn(weight[i], v) : v;
  }
}

__global__ void scatter_add_rows_kernel(float* dst, const float* src, const std::int32_t* index, const float* weight,
                                        std::int64_t n, std::int64_t c, std::int64_t r) {
  const std::int64_t j = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x;
  const std::int64_t p = blockIdx.y, parts = gridDim.y;
  if (j >= c) return;
  for (std::int64_t i = 0; i < n; ++i) {  // TUTORIAL: increasing i, one writer per element
    const std::int32_t k = index[i];
    if (k < 0 || k >= r || k % parts != p) continue;
    const float v = weight ? __fmul_rn(weight[i], src[i * c + j]) : src[i * c + j];
    dst[k * c + j] = __fadd_rn(dst[k * c + j], v);
  }
}

}  // namespace

void mul(float* y, const float* a, const float* b, std::int64_t n, void* stream) {
  if (n <= 0) return;
  mul_kernel<<<grid_for(n), kBlock, 0, as_stream(stream)>>>(y, a, b, n);
  check_launch("mul");
}

void swiglu_forward(float* h, const float* g, const float* u, std::int64_t n, void* stream) {
  if (n <= 0) return;
  swiglu_forward_kernel<<<grid_for(n), kBlock, 0, as_stream(stream)>>>(h, g, u, n);
  check_launch("swiglu_forward");
}

void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, std::int64_t n,
                     void* stream) {
  if (n <= 0) return;
  swiglu_backward_kernel<<<grid_for(n), kBlock, 0, as_stream(stream)>>>(dg, du, dh, g, u, n);
  check_launch("swiglu_backward");
}

void adamw_step(float* p, const float* g, float* m, float* v, std::int64_t n, const AdamWScalars& s, void* stream) {
  if (n <= 0) return;
  adamw_kernel<<<grid_for(n), kBlock, 0, as_stream(stream)>>>(p, g, m, v, n, s);
  check_launch("adamw_step");
}

std::int64_t rope_scratch(std::int64_t t, std::int64_t hd) { return 2 * t * (hd / 2); }

void rope(float* x, const std::int32_t* pos, std::int64_t b, std::int64_t t, std::int64_t nh, std::int64_t hd,
          float theta, bool inverse, float* scratch, void* stream) {
  const std::int64_t half = hd / 2, pairs = b * t * nh * half;
  if (pairs <= 0) return;
  float *cs = scratch, *sn = scratch + t * half;
  rope_table_kernel<<<grid_for(t * half), kBlock, 0, as_stream(stream)>>>(cs, sn, pos, t, hd,
                                                                          static_cast<double>(theta), inverse);
  check_launch("rope_table");
  rope_apply_kernel<<<grid_for(pairs), kBlock, 0, as_stream(stream)>>>(x, cs, sn, t, nh, hd, pairs);
  check_launch("rope_apply");
}

void gather_rows(float* out, const float* src, const std::int32_t* index, const float* weight, std::int64_t n,
                 std::int64_t c, std::int64_t r, void* stream) {
  if (n <= 0 || c <= 0) return;
  gather_rows_kernel<<<grid_for(n * c), kBlock, 0, as_stream(stream)>>>(out, src, index, weight, n, c, r);
  check_launch("gather_rows");
}

void scatter_add_rows(float* dst, const float* src, const std::int32_t* index, const float* weight, std::int64_t n,
                      std::int64_t c, std::int64_t r, void* stream) {
  if (n <= 0 || c <= 0 || r <= 0) return;
  const int threads = row_threads(c);
  const std::int64_t col_blocks = (c + threads - 1) / threads;
  // Partitions of the destination rows: about 64K threads in all, at most one per row.
  std::int64_t parts = 65536 / (col_blocks * threads);
  parts = parts < 1 ? 1 : (parts > r ? r : parts);
  const dim3 grid(static_cast<unsigned>(col_blocks), static_cast<unsigned>(parts < 65535 ? parts : 65535));
  scatter_add_rows_kernel<<<grid, threads, 0, as_stream(stream)>>>(dst, src, index, weight, n, c, r);
  check_launch("scatter_add_rows");
}

}  // namespace fivefold::kernels
