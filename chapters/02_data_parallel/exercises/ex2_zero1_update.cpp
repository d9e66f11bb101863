// SPDX-License-Identifier: MIT
// Exercise 2: the ZeRO-1 update of chapter 02 step 3.
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch02_ex2_zero1_update
//   mpirun -np 3 build/cpu/bin/ch02_ex2_zero1_update         (try -np 1, 2, 4 too)
// Every rank holds the full parameters params [padded] and its own (weighted) gradient grads
// [padded]. AdamW's m and v exist only for this rank's slice: opt was built over
// params.flat(r*s, s) and grad_shard. It prints PASSED when every rank ends with the same
// parameters as a full all-reduce followed by AdamW on the whole buffer.
// The solution is zero1_update in ../zero.cpp.
#include "chapters/02_data_parallel/exercises/check.hpp"

using namespace fivefold;
using namespace fivefold::ch02;

void exercise_zero1_update(Communicator& comm, Tensor& params, const Tensor& grads, Tensor& grad_shard, Tensor& send,
                           nn::AdamW& opt) {
  [[maybe_unused]] const std::int64_t s = grad_shard.numel();  // padded / n
  [[maybe_unused]] const int r = comm.rank();
  // EXERCISE: 1. reduce-scatter: grad_shard = slice r of the sum over ranks of grads.
  // EXERCISE: 2. update only your slice: one step of opt.
  // EXERCISE: 3. all-gather the updated slices into params. The input of a collective must not
  //              alias its output, so first copy your slice of params into send (copy_from).
}

int main(int argc, char** argv) { return check_zero1_update(argc, argv, exercise_zero1_update); }
