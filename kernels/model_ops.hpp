// SPDX-License-Identifier: MIT
/// @file model_ops.hpp
/// @brief Launch declarations of the model's elementwise kernels: product, SwiGLU, AdamW,
/// RoPE, and row gather / scatter-add (fp32 unless stated, contiguous, device pointers).
///
/// Every launch is asynchronous on @p stream and throws fivefold::Error if it fails. Products
/// and sums are rounded one at a time as the CPU reference rounds them, so these match it
/// bitwise except where a transcendental (expf, cos/sin in double) differs by an ulp. Indices
/// are not range-checked on the GPU (that would need a host sync): gather writes a NaN row
/// for an out-of-range index and scatter-add skips it.
#pragma once

#include <cstdint>

namespace fivefold::kernels {

/// y[i] = a[i] * b[i] (y may alias a or b).
void mul(float* y, const float* a, const float* b, std::int64_t n, void* stream);

/// h = silu(g) * u = g / (1 + e^-g) * u.
void swiglu_forward(float* h, const float* g, const float* u, std::int64_t n, void* stream);

/// du = dh * g * s, dg = dh * u * s * (1 + g (1 - s)), s = sigmoid(g).
void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, std::int64_t n,
                     void* stream);

/// The per-step scalars of one AdamW update, computed once on the host as the CPU does.
struct AdamWScalars {
  float decay;      ///< 1 - lr * weight_decay
  float beta1;      ///< b1
  float beta2;      ///< b2
  float one_minus_beta1;  ///< 1 - b1 (in float)
  float one_minus_beta2;  ///< 1 - b2 (in float)
  float step_size;  ///< lr / (1 - b1^step), the bias correction in double, rounded once
  float bc2_sqrt;   ///< sqrt(1 - b2^step), in double, rounded once
  float eps;        ///< denominator epsilon
};

/// p *= decay; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g g; p -= step_size m / (sqrt(v)/bc2_sqrt + eps).
void adamw_step(float* p, const float* g, float* m, float* v, std::int64_t n, const AdamWScalars& s, void* stream);

/// Floats of scratch rope needs: the cos and sin tables, 2 * t * hd/2.
std::int64_t rope_scratch(std::int64_t t, std::int64_t hd);

/// RoPE in place on x [b, t, nh, hd] at int32 positions pos [t] (see Ops::rope); the angles and
/// their cos/sin are computed in double and rounded once to float into @p scratch.
void rope(float* x, const std::int32_t* pos, std::int64_t b, std::int64_t t, std::int64_t nh, std::int64_t hd,
          float theta, bool inverse, float* scratch, void* stream);

/// out[i, :] = w[i] * src[index[i], :] (w = 1 when @p weight is null); src [r, c], out [n, c].
void gather_rows(float* out, const float* src, const std::int32_t* index, const float* weight, std::int64_t n,
                 std::int64_t c, std::int64_t r, void* stream);

/// dst[index[i], :] += w[i] * src[i, :] (w = 1 when @p weight is null); dst [r, c], src [n, c].
/// Deterministic: each destination element sums its contributions in increasing i, exactly
/// the CPU's order (so the result is bitwise the CPU's), with no atomics.
void scatter_add_rows(float* dst, const float* src, const std::int32_t* index, const float* weight, std::int64_t n,
                      std::int64_t c, std::int64_t r, void* stream);

}  // namespace fivefold::kernels
