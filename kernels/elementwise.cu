// SPDX-License-Identifier: MIT
// Elementwise kernels: one thread per element in a grid-stride loop (a block of 256 threads
// walks the array in strides of the whole grid, so any n works with a capped grid).
// What it leaves out: vectorised float4 loads and fusion; these kernels are memory-bound and
// simple on purpose. __fmul_rn/__fadd_rn keep nvcc from fusing a*x+y into one FMA, so the
// result is bitwise the one the CPU computes with a separate multiply and add.
#include "kernels/elementwise.hpp"
#include "kernels/launch.cuh"

namespace fivefold::kernels {
namespace {

__global__ void fill_kernel(float* x, float value, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{gridDim.x} * blockDim.x) {
    x[i] = value;
  }
}

__global__ void add_kernel(float* y, const float* a, const float* b, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{gridDim.x} * blockDim.x) {
    y[i] = __fadd_rn(a[i], b[i]);
  }
}

__global__ void maximum_kernel(float* y, const float* a, const float* b, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{gridDim.x} * blockDim.x) {
    // Same as std::max(a, b) on the CPU: (a < b) ? b : a (NaN in a propagates).
    const float av = a[i];
    const float bv = b[i];
    y[i] = (av < bv) ? bv : av;
  }
}

__global__ void axpy_kernel(float* y, float alpha, const float* x, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{gridDim.x} * blockDim.x) {
    y[i] = __fadd_rn(y[i], __fmul_rn(alpha, x[i]));  // TUTORIAL: two roundings, like the CPU
  }
}

__global__ void scale_kernel(float* x, float alpha, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{gridDim.x} * blockDim.x) {
    x[i] = __fmul_rn(x[i], alpha);
  }
}

}  // namespace

void fill(float* x, float value, std::int64_t n, void* stream) {
  if (n <= 0) return;
  fill_kernel<<<grid_for(n), kBlock, 0, as_stream(stream)>>>(x, value, n);
  check_launch("fill");
}

void add(float* y, const float* a, const float* b, std::int64_t n, void* stream) {
  if (n <= 0) return;
  add_kernel<<<grid_for(n), kBlock, 0, as_stream(stream)>>>(y, a, b, n);
  check_launch("add");
}

void maximum(float* y, const float* a, const float* b, std::int64_t n, void* stream) {
  if (n <= 0) return;
  maximum_kernel<<<grid_for(n), kBlock, 0, as_stream(stream)>>>(y, a, b, n);
  check_launch("maximum");
}

void axpy(float* y, float alpha, const float* x, std::int64_t n, void* stream) {
  if (n <= 0) return;
  axpy_kernel<<<grid_for(n), kBlock, 0, as_stream(stream)>>>(y, alpha, x, n);
  check_launch("axpy");
}

void scale(float* x, float alpha, std::int64_t n, void* stream) {
  if (n <= 0) return;
  scale_kernel<<<grid_for(n), kBlock, 0, as_stream(stream)>>>(x, alpha, n);
  check_launch("scale");
}

}  // namespace fivefold::kernels
