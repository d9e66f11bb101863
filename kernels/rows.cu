// SPDX-License-Identifier: MIT
// Row kernels: one block per row, each thread walks the row in strides of the block, then a
// fixed-order block reduction (reduce.cuh) combines the partials. Products that the CPU rounds
// separately are spelled __fmul_rn/__fadd_rn so nvcc does not fuse them into an FMA; only the
// order of each row's sum differs from the CPU. Column sums (RMSNorm's dw) are two passes over
// fixed row chunks instead of float atomics, so every run gives the same bits.
#include <cmath>

#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"
#include "kernels/rows.hpp"

namespace fivefold::kernels {
namespace {

constexpr int kChunkRows = 32;  // rows per partial in the dw column sums

__global__ void rmsnorm_forward_kernel(float* y, float* rstd, const float* x, const float* w, std::int64_t c,
                                       float eps) {
  __shared__ float buf[33];
  const std::int64_t row = blockIdx.x;
  const float* xr = x + row * c;
  float ss = 0.0f;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) ss = __fadd_rn(ss, __fmul_rn(xr[j], xr[j]));
  ss = block_sum(ss, buf);
  const float r = 1.0f / sqrtf(ss / static_cast<float>(c) + eps);  // TUTORIAL: 1 / RMS of the row
  if (threadIdx.x == 0) rstd[row] = r;
  float* yr = y + row * c;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) yr[j] = __fmul_rn(__fmul_rn(xr[j], r), w[j]);
}

__global__ void rmsnorm_backward_dx_kernel(float* dx, const float* dy, const float* x, const float* w,
                                           const float* rstd, std::int64_t c) {
  __shared__ float buf[33];
  const std::int64_t row = blockIdx.x;
  const float r = rstd[row];
  const float *xr = x + row * c, *dyr = dy + row * c;
  float acc = 0.0f;  // sum_j (dy w)_j xhat_j
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x)
    acc = __fadd_rn(acc, __fmul_rn(__fmul_rn(dyr[j], w[j]), __fmul_rn(xr[j], r)));
  const float mean = block_sum(acc, buf) / static_cast<float>(c);
  float* dxr = dx + row * c;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const float gw = __fmul_rn(dyr[j], w[j]), xhat = __fmul_rn(xr[j], r);
    dxr[j] = __fmul_rn(r, __fsub_rn(gw, __fmul_rn(xhat, mean)));
  }
}

// partial[g, j] = sum over rows of chunk g of dy[i, j] * xhat[i, j], rows in increasing order.
__global__ void rmsnorm_dw_partial_kernel(float* partial, const float* dy, const float* x, const float* rstd,
                                          std::int64_t n, std::int64_t c, std::int64_t chunk) {
  const std::int64_t j = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x;
  if (j >= c) return;
  const std::int64_t g = blockIdx.y, begin = g * chunk, end = begin + chunk < n ? begin + chunk : n;
  float acc = 0.0f;
  for (std::int64_t i = begin; i < end; ++i)
    acc = __fadd_rn(acc, __fmul_rn(dy[i * c + j], __fmul_rn(x[i * c + j], rstd[i])));
  partial[g * c + j] = acc;
}

// dw[j] += sum over chunks g (in order) of partial[g, j].
__global__ void column_sum_add_kernel(float* dw, const float* partial, std::int64_t chunks, std::int64_t c) {
  const std::int64_t j = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x;
  if (j >= c) return;
  float acc = 0.0f;
  for (std::int64_t g = 0; g < chunks; ++g) acc = __fadd_rn(acc, partial[g * c + j]);
  dw[j] = __fadd_rn(dw[j], acc);
}

__global__ void softmax_rows_kernel(float* y, const float* x, std::int64_t c) {
  __shared__ float buf[33];
  const std::int64_t row = blockIdx.x;
  const float* xr = x + row * c;
  float* yr = y + row * c;  // may alias xr: each element is read and written by one thread
  float m = -INFINITY;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) m = fmaxf(m, xr[j]);
  m = block_max(m, buf);
  float sum = 0.0f;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const float e = expf(__fsub_rn(xr[j], m));
    yr[j] = e;
    sum = __fadd_rn(sum, e);
  }
  sum = block_sum(sum, buf);
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) yr[j] = __fdiv_rn(yr[j], sum);
}

__global__ void cross_entropy_kernel(float* loss, float* d, const float* x, const std::int32_t* targets,
                                     std::int64_t v, float grad_scale) {
  __shared__ float buf[33];
  __shared__ float x_target;
  const std::int64_t row = blockIdx.x;
  const float* xr = x + row * v;
  float* dr = d + row * v;  // may alias xr
  const std::int32_t t = targets[row];
  const bool valid = t >= 0 && t < v;
  float m = -INFINITY;
  for (std::int64_t j = threadIdx.x; j < v; j += blockDim.x) m = fmaxf(m, xr[j]);
  m = block_max(m, buf);
  float sum = 0.0f;
  for (std::int64_t j = threadIdx.x; j < v; j += blockDim.x) sum = __fadd_rn(sum, expf(__fsub_rn(xr[j], m)));
  sum = block_sum(sum, buf);
  const float lse = __fadd_rn(m, logf(sum));
  if (threadIdx.x == 0) x_target = valid ? xr[t] : NAN;
  __syncthreads();  // the target logit is read before anyone overwrites it (d may alias x)
  if (threadIdx.x == 0) loss[row] = __fsub_rn(lse, x_target);
  for (std::int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    float g = __fmul_rn(expf(__fsub_rn(xr[j], lse)), grad_scale);  // TUTORIAL: softmax - onehot
    if (j == t) g = __fsub_rn(g, grad_scale);
    dr[j] = valid ? g : NAN;
  }
}

__global__ void row_dot_kernel(float* out, const float* a, const float* b, std::int64_t c) {
  __shared__ float buf[33];
  const std::int64_t row = blockIdx.x;
  float acc = 0.0f;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) acc = __fadd_rn(acc, __fmul_rn(a[row * c + j], b[row * c + j]));
  acc = block_sum(acc, buf);
  if (threadIdx.x == 0) out[row] = acc;
}

// partial[block] = sum of x^2 over the block's grid-stride share, in double.
__global__ void sum_squares_partial_kernel(double* partial, const float* x, std::int64_t n) {
  __shared__ double buf[33];
  double acc = 0.0;
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{gridDim.x} * blockDim.x) {
    const double v = x[i];
    acc += v * v;
  }
  acc = block_sum(acc, buf);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// out[0] = sum of partial[0..count), in a fixed order (one block).
__global__ void sum_partials_kernel(double* out, const double* partial, std::int64_t count) {
  __shared__ double buf[33];
  double acc = 0.0;
  for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, buf);
  if (threadIdx.x == 0) out[0] = acc;
}

unsigned rows_grid(std::int64_t n, const char* kernel) {
  FIVEFOLD_CHECK(n <= 0x7fffffff, kernel, ": ", n, " rows exceed one grid; split the call");
  return static_cast<unsigned>(n);
}

std::int64_t dw_chunks(std::int64_t n) {
  const std::int64_t chunks = (n + kChunkRows - 1) / kChunkRows;
  return chunks < 65535 ? chunks : 65535;
}

std::int64_t squares_blocks(std::int64_t n) {
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
  return blocks < 1 ? 1 : (blocks > 1024 ? 1024 : blocks);
}

}  // namespace

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, std::int64_t n, std::int64_t c,
                     float eps, void* stream) {
  if (n <= 0 || c <= 0) return;
  rmsnorm_forward_kernel<<<rows_grid(n, "rmsnorm_forward"), row_threads(c), 0, as_stream(stream)>>>(y, rstd, x, w,
                                                                                                    c, eps);
  check_launch("rmsnorm_forward");
}

std::int64_t rmsnorm_backward_scratch(std::int64_t n, std::int64_t c) { return n <= 0 ? 0 : dw_chunks(n) * c; }

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                      std::int64_t n, std::int64_t c, float* scratch, void* stream) {
  if (n <= 0 || c <= 0) return;
  cudaStream_t s = as_stream(stream);
  rmsnorm_backward_dx_kernel<<<rows_grid(n, "rmsnorm_backward"), row_threads(c), 0, s>>>(dx, dy, x, w, rstd, c);
  check_launch("rmsnorm_backward_dx");
  const std::int64_t chunks = dw_chunks(n), chunk = (n + chunks - 1) / chunks;
  const dim3 grid(static_cast<unsigned>((c + kBlock - 1) / kBlock), static_cast<unsigned>(chunks));
  rmsnorm_dw_partial_kernel<<<grid, kBlock, 0, s>>>(scratch, dy, x, rstd, n, c, chunk);
  check_launch("rmsnorm_dw_partial");
  column_sum_add_kernel<<<static_cast<unsigned>((c + kBlock - 1) / kBlock), kBlock, 0, s>>>(dw, scratch, chunks, c);
  check_launch("rmsnorm_dw_sum");
}

void softmax_rows(float* y, const float* x, std::int64_t n, std::int64_t c, void* stream) {
  if (n <= 0 || c <= 0) return;
  softmax_rows_kernel<<<rows_grid(n, "softmax_rows"), row_threads(c), 0, as_stream(stream)>>>(y, x, c);
  check_launch("softmax_rows");
}

void cross_entropy(float* loss, float* d, const float* x, const std::int32_t* targets, std::int64_t n,
                   std::int64_t v, float grad_scale, void* stream) {
  if (n <= 0 || v <= 0) return;
  cross_entropy_kernel<<<rows_grid(n, "cross_entropy"), row_threads(v), 0, as_stream(stream)>>>(loss, d, x, targets,
                                                                                                v, grad_scale);
  check_launch("cross_entropy");
}

void row_dot(float* out, const float* a, const float* b, std::int64_t n, std::int64_t c, void* stream) {
  if (n <= 0) return;
  if (c <= 0) {  // empty rows sum to 0
    FIVEFOLD_CHECK(cudaMemsetAsync(out, 0, static_cast<std::size_t>(n) * sizeof(float), as_stream(stream)) ==
                       cudaSuccess,
                   "row_dot: cudaMemsetAsync failed");
    return;
  }
  row_dot_kernel<<<rows_grid(n, "row_dot"), row_threads(c), 0, as_stream(stream)>>>(out, a, b, c);
  check_launch("row_dot");
}

std::int64_t sum_squares_scratch(std::int64_t n) { return squares_blocks(n) + 1; }

double sum_squares(const float* x, std::int64_t n, double* scratch, void* stream) {
  if (n <= 0) return 0.0;
  cudaStream_t s = as_stream(stream);
  const std::int64_t blocks = squares_blocks(n);
  sum_squares_partial_kernel<<<static_cast<unsigned>(blocks), kBlock, 0, s>>>(scratch + 1, x, n);
  check_launch("sum_squares_partial");
  sum_partials_kernel<<<1, kBlock, 0, s>>>(scratch, scratch + 1, blocks);
  check_launch("sum_squares_total");
  double out = 0.0;
  cudaError_t rc = cudaMemcpyAsync(&out, scratch, sizeof(double), cudaMemcpyDeviceToHost, s);
  if (rc == cudaSuccess) rc = cudaStreamSynchronize(s);
  FIVEFOLD_CHECK(rc == cudaSuccess, "sum_squares: copying the result to the host failed: ", cudaGetErrorString(rc));
  return out;
}

}  // namespace fivefold::kernels
