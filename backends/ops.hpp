// SPDX-License-Identifier: MIT
/// @file ops.hpp
/// @brief The Ops interface: the compute the layers need, on the backend's device.
///
/// Every tensor passed to an Ops method lives on device() and is fp32 unless stated. Lesson
/// code calls these and never touches Eigen or CUDA directly, so one source runs on both.
/// The Eigen implementation is the reference every other implementation is tested against.
#pragma once

#include <string>

#include "common/tensor.hpp"

namespace fivefold {

/// Compute primitives of a backend.
class Ops {
 public:
  virtual ~Ops() = default;
  /// "eigen" or "cuda".
  virtual std::string name() const = 0;
  /// Where this backend's tensors live.
  virtual Device device() const = 0;
  /// Waits for all queued work (a no-op on the CPU).
  virtual void synchronize() = 0;

  /// Uninitialised tensor on device().
  Tensor empty(Shape shape, DType dtype = DType::f32) const { return Tensor::empty(std::move(shape), dtype, device()); }
  /// Zero tensor on device().
  Tensor zeros(Shape shape, DType dtype = DType::f32) const { return Tensor::zeros(std::move(shape), dtype, device()); }
  /// Copy of @p t (any device) on device().
  Tensor upload(const Tensor& t) const { return t.to(device()); }

  /// x[i] = value.
  virtual void fill(Tensor& x, float value) = 0;
  /// y = a + b (y may alias a or b).
  virtual void add(Tensor& y, const Tensor& a, const Tensor& b) = 0;
  /// y = max(a, b) elementwise (y may alias a or b).
  virtual void maximum(Tensor& y, const Tensor& a, const Tensor& b) = 0;
  /// y += alpha * x.
  virtual void axpy(Tensor& y, float alpha, const Tensor& x) = 0;
  /// x *= alpha.
  virtual void scale(Tensor& x, float alpha) = 0;
  /// C = alpha * op(A) op(B) + beta * C, with A, B, C viewed as 2-D row-major matrices
  /// (leading dimensions flattened: A [.., K] is [M, K]); op(X) = X^T when the flag is set.
  virtual void matmul(Tensor& c, const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b,
                      float alpha = 1.0f, float beta = 0.0f) = 0;

  // ---- Model ops (nn/). Conventions for everything below:
  //  * "[N, C]" means the tensor is viewed as N rows of its last dimension C (leading
  //    dimensions flattened), so a [B, T, C] activation is N = B*T rows.
  //  * index / token / position tensors are int32 on device(); everything else fp32.
  //  * an output is OVERWRITTEN unless its comment says "accumulates (+=)".
  //  * no host callbacks: every method is one (or a few) CUDA kernels on the CUDA backend.

  /// y = a * b elementwise (y may alias a or b).
  virtual void mul(Tensor& y, const Tensor& a, const Tensor& b) = 0;
  /// Sum of x[i]^2 over all elements, accumulated in double and returned to the host
  /// (synchronises; used for gradient norms and checks, not in the hot path).
  virtual double sum_squares(const Tensor& x) = 0;
  /// out[i] = sum_j a[i, j] * b[i, j]; a, b [N, C], out [N] (the MoE gate gradient).
  virtual void row_dot(Tensor& out, const Tensor& a, const Tensor& b) = 0;

  /// Gather rows: out[i, :] = w[i] * src[index[i], :], with w[i] = 1 when @p weight is an
  /// undefined Tensor(). src [R, C], index int32 [N] (each in [0, R)), weight [N] or undefined,
  /// out [N, C]. The embedding forward (src = embed_tokens.weight, index = tokens) and the MoE
  /// dispatch use it.
  virtual void gather_rows(Tensor& out, const Tensor& src, const Tensor& index, const Tensor& weight) = 0;
  /// Scatter-add rows: dst[index[i], :] += w[i] * src[i, :] — accumulates (+=); repeated
  /// indices are all summed (order of the sum unspecified on the GPU). dst [R, C], src [N, C],
  /// index int32 [N], weight [N] or undefined (= 1). The embedding backward (dst = its
  /// gradient, weight undefined) and the MoE combine use it.
  virtual void scatter_add_rows(Tensor& dst, const Tensor& src, const Tensor& index, const Tensor& weight) = 0;

  /// RMSNorm forward: rstd[i] = 1 / sqrt(mean_j x[i, j]^2 + eps); y[i, j] = x[i, j] * rstd[i] * w[j].
  /// x, y [N, C]; w [C]; rstd [N] (saved for the backward).
  virtual void rmsnorm_forward(Tensor& y, Tensor& rstd, const Tensor& x, const Tensor& w, float eps) = 0;
  /// RMSNorm backward. dx [N, C] is overwritten: dx = rstd * (dy*w - xhat * mean_j(dy*w*xhat)),
  /// xhat = x * rstd. dw [C] accumulates (+=) sum_i dy[i, :] * xhat[i, :].
  virtual void rmsnorm_backward(Tensor& dx, Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                                const Tensor& rstd) = 0;

  /// RoPE in place on x [B, T, nh, hd] (hd even) with int32 positions pos [T] (global token
  /// positions, so a sequence chunk passes its own offsets): inv_freq[i] = theta^(-2i/hd),
  /// angle = pos[t] * inv_freq[i], and for i < hd/2 the pair (x1, x2) = (x[i], x[i + hd/2])
  /// becomes (x1 cos - x2 sin, x2 cos + x1 sin). @p inverse rotates by -angle, which is the
  /// backward (the transpose of a rotation): rope(dx, pos, theta, true) turns dy into dx.
  /// The angle and its cos/sin are computed in double and rounded once to float (as a table
  /// per (t, i)), so backends agree to the last bit or two at large positions.
  virtual void rope(Tensor& x, const Tensor& pos, float theta, bool inverse) = 0;

  /// Causal attention with positions (GQA). q [B, T, H, hd]; k, v [B, S, Hkv, hd], H % Hkv == 0;
  /// q_pos int32 [T], k_pos int32 [S]. Query head h reads kv head h / (H / Hkv). Key s is
  /// visible to query t iff k_pos[s] <= q_pos[t]. Scores scaled by 1/sqrt(hd).
  /// Outputs (overwritten): out [B, T, H, hd] = softmax over visible keys of the scores times v;
  /// lse [B, H, T] = log sum_{visible s} exp(score). A row with no visible key has out 0 and
  /// lse -inf (and contributes nothing in attention_backward / attention_merge).
  virtual void attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& q_pos, const Tensor& k_pos) = 0;
  /// Attention backward for the same shapes, given @p out and @p lse of the FULL attention of
  /// these queries (possibly over more keys than this k/v block: the blockwise/ring case, where
  /// this call then yields exactly this block's share). P = exp(score - lse) on visible keys,
  /// D = rowsum(dout * out), dS = P * (dout v^T - D). dq [B, T, H, hd], dk, dv [B, S, Hkv, hd]
  /// all ACCUMULATE (+=): dq += dS k / sqrt(hd), dk += dS^T q / sqrt(hd), dv += P^T dout, with
  /// dk/dv summed over the H / Hkv query heads of each group. Zero them before a one-shot call.
  virtual void attention_backward(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout, const Tensor& q,
                                  const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                                  const Tensor& q_pos, const Tensor& k_pos) = 0;
  /// Online-softmax merge, in place into (out, lse): given the attention of the same queries
  /// over two disjoint key sets, (out, lse) and (out_b, lse_b), writes the attention over their
  /// union: lse' = log(exp(lse) + exp(lse_b)), out' = out e^(lse - lse') + out_b e^(lse_b - lse').
  /// A side with lse -inf has weight 0; when both are -inf, (out, lse) stay as they are (out 0
  /// by the convention of attention_forward).
  /// out, out_b [B, T, H, hd]; lse, lse_b [B, H, T].
  virtual void attention_merge(Tensor& out, Tensor& lse, const Tensor& out_b, const Tensor& lse_b) = 0;

  /// SwiGLU: h = silu(g) * u, silu(z) = z / (1 + e^-z). g, u, h same size (h may alias neither).
  virtual void swiglu_forward(Tensor& h, const Tensor& g, const Tensor& u) = 0;
  /// SwiGLU backward (overwrites dg, du): du = dh * silu(g), dg = dh * u * silu'(g),
  /// silu'(z) = s(z) (1 + z (1 - s(z))), s = sigmoid.
  virtual void swiglu_backward(Tensor& dg, Tensor& du, const Tensor& dh, const Tensor& g, const Tensor& u) = 0;

  /// y[i, :] = softmax(x[i, :]) over the last dimension (max-subtracted); x, y [N, E], y may alias x.
  /// (The MoE router. Its top-k and backward are done on the host: N*E is small.)
  virtual void softmax_rows(Tensor& y, const Tensor& x) = 0;
  /// Softmax cross-entropy in one pass. logits [N, V], targets int32 [N] (each in [0, V)).
  /// loss [N] = logsumexp(logits[i, :]) - logits[i, targets[i]];
  /// dlogits [N, V] = (softmax(logits[i, :]) - onehot(targets[i])) * grad_scale.
  /// dlogits may be the same tensor as logits (computed in place, saving a [N, V] buffer).
  virtual void cross_entropy(Tensor& loss, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                             float grad_scale) = 0;

  /// One AdamW step on a parameter, torch.optim.AdamW semantics; @p step counts from 1:
  /// p -= lr*weight_decay*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  /// p -= (lr / (1 - b1^step)) * m / (sqrt(v) / sqrt(1 - b2^step) + eps).
  /// (the bias corrections 1 - b^step are computed in double, as Python does in torch).
  /// p, m, v are updated in place; g is read. All four have the same size.
  virtual void adamw_step(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, float lr, float beta1, float beta2,
                          float eps, float weight_decay, int step) = 0;
};

}  // namespace fivefold
