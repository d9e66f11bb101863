// SPDX-License-Identifier: MIT
// Exercise 2: the KV cache (chapter 01, step 5).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch01_ex2_kv_cache
//   build/cpu/bin/ch01_ex2_kv_cache
// It prints PASSED when greedy generation through your cache gives the same tokens (and logits
// to 1e-5) as a full forward of the whole sequence for every new token, for a dense GQA model
// and a MoE model. Generation calls this once per layer and step: first with the T tokens of
// the prompt at start 0 (the prefill), then with one token (T = 1) at start = its position.
// --hint 1 gives the idea and the API, --hint 2 the rule. The chapter's own version is in
// ../generation.cpp: read it after you are done.
#include "chapters/01_reference_model/exercises/check.hpp"
#include "nn/attention.hpp"

using namespace fivefold;

// q [B, T, H, hd] and k, v [B, T, Hkv, hd]: this step's new tokens, projected, NOT yet rotated.
// The cache holds k, v [B, S_max, Hkv, hd] (slot s = position s) and k_pos int32 [S_max] = 0..S_max-1.
// Out: out [B, T, H, hd], lse [B, H, T].
void exercise_cache_attend(Ops& ops, nn::KvCache& cache, Tensor& q, Tensor& k, const Tensor& v, std::int64_t start,
                           float rope_theta, Tensor& out, Tensor& lse) {
  const std::int64_t B = q.dim(0), T = q.dim(1), smax = cache.k.dim(1), row = k.dim(2) * k.dim(3);
  const Tensor pos = nn::positions(ops, start, T);  // int32 [T]: start, ..., start+T-1
  // EXERCISE: rotate q and k by their positions: ops.rope(x, pos, rope_theta, /*inverse=*/false).
  for (std::int64_t b = 0; b < B; ++b) {
    // EXERCISE: append: the T rows (of `row` floats each) of sequence b in k go to slots
    //           start..start+T-1 of sequence b in cache.k; the same for v into cache.v.
    //           Tensor::flat(offset, length) views a range; dst.copy_from(src) copies.
    (void)smax;
    (void)row;
  }
  // EXERCISE: attend over the whole cache instead of the new keys only: keys cache.k, values
  //           cache.v at positions cache.k_pos. Slots not written yet sit at positions greater
  //           than any query's, so the causal mask hides them.
  ops.attention_forward(out, lse, q, k, v, pos, pos);
  (void)rope_theta;
}

int main(int argc, char** argv) { return ch01::check_kv_cache(argc, argv, exercise_cache_attend); }
