// SPDX-License-Identifier: MIT
// Exercise 1: the row-parallel linear (chapter 03, step 2), forward and backward.
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch03_ex1_row_parallel
//   mpirun -np 2 build/cpu/bin/ch03_ex1_row_parallel        (try -np 1, 3, 4 too)
// y = x W^T with W [out, in] split by INPUT columns: rank r holds W_r [out, in/tp] and the
// matching slice x_r [N, in/tp] of the input. It prints PASSED when y, dx_r and dW_r equal the
// serial ones and the collectives are the right ones, else what differs. --hint 1 gives the
// idea and the API, --hint 2 the rule; the chapter's own layer (RowParallelLinear in
// ../tp_linear.cpp) is the answer: read it after you are done.
#include "chapters/03_tensor_parallel/exercises/check.hpp"
#include "chapters/03_tensor_parallel/tp_linear.hpp"
#include "nn/layers.hpp"

using namespace fivefold;

void exercise_row_forward(Communicator& tp, Ops& ops, Tensor& y, const Tensor& x_r, const Tensor& w_r) {
  // EXERCISE: this rank's contribution x_r W_r^T [N, out] (nn::linear_forward writes y = x W^T).
  // EXERCISE: it is only a partial sum over this rank's in/tp inputs; make y the full sum on
  //           every rank with one collective (which of the operators f and g is this?).
}

void exercise_row_backward(Communicator& tp, Ops& ops, Tensor& dx_r, Tensor& dw_r, const Tensor& dy,
                           const Tensor& x_r, const Tensor& w_r) {
  // EXERCISE: dx_r = dy W_r and dW_r += dy^T x_r (nn::linear_backward does both). Does either
  //           need another rank's data? (dy is the full gradient, the same on every rank.)
}

int main(int argc, char** argv) {
  return ch03::check_row_parallel(argc, argv, exercise_row_forward, exercise_row_backward);
}
