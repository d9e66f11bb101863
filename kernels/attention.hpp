// SPDX-License-Identifier: MIT
/// @file attention.hpp
/// @brief Causal GQA attention with positions on the GPU: forward, backward and the
/// online-softmax merge (fp32, device pointers; the semantics are those of Ops).
///
/// The scores of one batch row are materialised ([H, T, S] floats of scratch): cuBLAS strided
/// batched SGEMMs compute Q K^T, P V and the backward products, one call per query head of a
/// GQA group (batched over the kv heads, so each call's query heads share nothing), and row
/// kernels do the masked softmax. Correctness over speed: no flash-style tiling. The cuBLAS
/// handle and the stream are passed opaque (`void*`); both must be the compute stream's.
#pragma once

#include <cstdint>

namespace fivefold::kernels {

/// Sizes of one attention call: q [b, t, h, hd]; k, v [b, s, hkv, hd].
struct AttentionDims {
  std::int64_t b;    ///< batch
  std::int64_t t;    ///< queries per sequence
  std::int64_t s;    ///< keys per sequence
  std::int64_t h;    ///< query heads
  std::int64_t hkv;  ///< key/value heads (divides h)
  std::int64_t hd;   ///< head dim
};

/// Floats of scratch attention_forward needs.
std::int64_t attention_forward_scratch(const AttentionDims& d);

/// out [b, t, h, hd] and lse [b, h, t] of causal attention (key j visible to query i iff
/// k_pos[j] <= q_pos[i]); a row with no visible key gets out 0 and lse -inf.
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const std::int32_t* q_pos, const std::int32_t* k_pos, const AttentionDims& d, float* scratch,
                       void* cublas, void* stream);

/// Floats of scratch attention_backward needs.
std::int64_t attention_backward_scratch(const AttentionDims& d);

/// dq, dk, dv ACCUMULATE the gradients given the full attention's out and lse (see
/// Ops::attention_backward); dk/dv sum the query heads of each group in increasing head order.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const std::int32_t* q_pos,
                        const std::int32_t* k_pos, const AttentionDims& d, float* scratch, void* cublas,
                        void* stream);

/// In place (out, lse) <- merge with (out_b, lse_b): out [b, t, h, hd], lse [b, h, t].
void attention_merge(float* out, float* lse, const float* out_b, const float* lse_b, std::int64_t b, std::int64_t t,
                     std::int64_t h, std::int64_t hd, void* stream);

}  // namespace fivefold::kernels
