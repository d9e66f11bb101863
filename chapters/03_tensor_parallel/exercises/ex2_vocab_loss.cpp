// SPDX-License-Identifier: MIT
// Exercise 2: the vocab-parallel cross-entropy (chapter 03, step 5).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch03_ex2_vocab_loss
//   mpirun -np 2 build/cpu/bin/ch03_ex2_vocab_loss          (try -np 3, 4 too)
// Rank r holds the logits of its vocabulary slice, columns v0 .. v0+V/tp-1, of N rows. Without
// ever gathering the N x V logits, compute the mean over rows of
//   loss_i = log sum_v exp(l_iv) - l_i,target
// and this rank's gradient columns d loss / d l_iv = (softmax_iv - [v == target_i]) / N.
// It prints PASSED when both equal the serial cross-entropy (with three all-reduces of N floats),
// else what differs. --hint 1 gives the idea and the API, --hint 2 the rule; solution.cpp and
// the library's VocabParallelLmHead::loss (../tp_vocab.cpp) are answers: read them after.
#include <cmath>

#include "chapters/03_tensor_parallel/exercises/check.hpp"

using namespace fivefold;

double exercise_vocab_loss(Communicator& tp, Ops& ops, const Tensor& logits_r, const std::vector<std::int32_t>& targets,
                           std::int64_t v0, Tensor& dlogits_r) {
  const std::int64_t n = logits_r.dim(0), vl = logits_r.dim(1);
  const float* l = logits_r.data<float>();
  float* dl = dlogits_r.data<float>();
  Tensor m = ops.empty({n}), s = ops.zeros({n}), z = ops.zeros({n});  // per row: max, sum of exp, target logit
  for (std::int64_t i = 0; i < n; ++i) {
    float mx = l[i * vl];
    for (std::int64_t j = 1; j < vl; ++j) mx = std::max(mx, l[i * vl + j]);
    m.at<float>(i) = mx;  // the max over THIS rank's columns
  }
  // EXERCISE: make m the max over all V columns (one collective over tp).
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < vl; ++j) s.at<float>(i) += std::exp(l[i * vl + j] - m.at<float>(i));
  // EXERCISE: make s the sum over all V columns (one collective).
  // EXERCISE: z[i] = the target's logit on the rank that owns targets[i] (v0 <= t < v0 + vl), 0
  //           elsewhere; then one collective so every rank has it.
  double loss = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double lse = m.at<float>(i) + std::log(static_cast<double>(s.at<float>(i)));
    loss += lse - z.at<float>(i);
    for (std::int64_t j = 0; j < vl; ++j) {
      // EXERCISE: dl[i*vl + j] = (softmax over the WHOLE vocabulary, minus 1 at the target's
      //           column if this rank owns it) / n. Hint: softmax_v = exp(l_v - lse).
      dl[i * vl + j] = 0.0f;
    }
  }
  (void)tp;
  (void)v0;
  (void)targets;
  return loss / static_cast<double>(n);
}

int main(int argc, char** argv) { return ch03::check_vocab_loss(argc, argv, exercise_vocab_loss); }
