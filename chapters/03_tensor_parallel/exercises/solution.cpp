// SPDX-License-Identifier: MIT
// The exercise checks run on solutions, so ctest can show that the checks pass on a correct
// answer: ch03_ex_solution row_parallel (the chapter library's RowParallelLinear) | vocab_loss
// (exercise 2 written out; the library composes the same from Ops in tp_vocab.cpp).
#include <cmath>
#include <cstdio>
#include <string>

#include "chapters/03_tensor_parallel/exercises/check.hpp"
#include "chapters/03_tensor_parallel/tp_gather.hpp"
#include "chapters/03_tensor_parallel/tp_linear.hpp"
#include "nn/params.hpp"

using namespace fivefold;

namespace {

void solution_row_forward(Communicator& tp, Ops& ops, Tensor& y, const Tensor& x_r, const Tensor& w_r) {
  nn::Param w{"w", w_r, ops.zeros(w_r.shape())};
  ch03::RowParallelLinear row(ops, tp, w);
  y.copy_from(row.forward(x_r));  // partial x_r W_r^T, then g: all-reduce
}

void solution_row_backward(Communicator& tp, Ops& ops, Tensor& dx_r, Tensor& dw_r, const Tensor& dy, const Tensor& x_r,
                           const Tensor& w_r) {
  nn::Param w{"w", w_r, dw_r};
  ch03::RowParallelLinear row(ops, tp, w);
  ch03::uncounted(tp, [&] { row.forward(x_r); });  // the layer saves x_r in its forward (not counted here)
  dx_r.copy_from(row.backward(dy));                 // no communication
}

double solution_vocab_loss(Communicator& tp, Ops& ops, const Tensor& logits_r, const std::vector<std::int32_t>& targets,
                           std::int64_t v0, Tensor& dlogits_r) {
  const std::int64_t n = logits_r.dim(0), vl = logits_r.dim(1);
  const float* l = logits_r.data<float>();
  float* dl = dlogits_r.data<float>();
  Tensor m = ops.empty({n}), s = ops.zeros({n}), z = ops.zeros({n});
  for (std::int64_t i = 0; i < n; ++i) {
    float mx = l[i * vl];
    for (std::int64_t j = 1; j < vl; ++j) mx = std::max(mx, l[i * vl + j]);
    m.at<float>(i) = mx;
  }
  tp.all_reduce(m, ReduceOp::max);  // the row max over all V columns
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < vl; ++j) s.at<float>(i) += std::exp(l[i * vl + j] - m.at<float>(i));
  tp.all_reduce(s);  // sum of exp(l - M) over all V columns
  for (std::int64_t i = 0; i < n; ++i)
    if (targets[i] >= v0 && targets[i] < v0 + vl) z.at<float>(i) = l[i * vl + (targets[i] - v0)];
  tp.all_reduce(z);  // the target logit, from its owner
  double loss = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double lse = m.at<float>(i) + std::log(static_cast<double>(s.at<float>(i)));
    loss += lse - z.at<float>(i);
    for (std::int64_t j = 0; j < vl; ++j) {
      const double p = std::exp(static_cast<double>(l[i * vl + j]) - lse) - (v0 + j == targets[i] ? 1.0 : 0.0);
      dl[i * vl + j] = static_cast<float>(p / static_cast<double>(n));
    }
  }
  return loss / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "";
  argv[1 < argc ? 1 : 0] = argv[0];  // the checks read the arguments after the name
  if (which == "row_parallel")
    return ch03::check_row_parallel(argc - 1, argv + 1, solution_row_forward, solution_row_backward);
  if (which == "vocab_loss") return ch03::check_vocab_loss(argc - 1, argv + 1, solution_vocab_loss);
  std::fprintf(stderr, "error: usage: ch03_ex_solution row_parallel|vocab_loss (got '%s')\n", which.c_str());
  return 2;
}
