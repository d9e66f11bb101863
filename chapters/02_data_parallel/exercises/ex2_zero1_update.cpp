// SPDX-License-Identifier: MIT
// Exercise 2: the ZeRO-1 update of chapter 02 step 3.
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch02_ex2_zero1_update
//   mpirun -np 3 build/cpu/bin/ch02_ex2_zero1_update         (try -np 1, 2, 4 too)
// Every rank holds the full parameters params [padded] and its own (weighted) gradient grads
// [padded]. AdamW's m and v exist only for this rank's slice: opt was built over
// params.flat(r*s, s) and grad_shard. It prints PASSED when every rank ends with the same
// parameters as a full all-reduce followed by AdamW on the whole buffer; else the first wrong
// parameter. --hint 1 gives the idea and the API, --hint 2 the rule. The chapter's own version
// is in ../zero.cpp: read it after you are done.
#include "chapters/02_data_parallel/exercises/check.hpp"

using namespace fivefold;
using namespace fivefold::ch02;

void exercise_zero1_update(Communicator& comm, Tensor& params, const Tensor& grads, Tensor& grad_shard, Tensor& send,
                           nn::AdamW& opt) {
  [[maybe_unused]] const std::int64_t s = grad_shard.numel();  // padded / n
  [[maybe_unused]] const int r = comm.rank();
  // EXERCISE: give this rank the sum over ranks of its slice of the gradients (in grad_shard).
  // EXERCISE: update only this rank's slice with opt.
  // EXERCISE: give every rank every updated slice, in params (send is a spare slice-sized buffer).
}

int main(int argc, char** argv) { return check_zero1_update(argc, argv, exercise_zero1_update); }
