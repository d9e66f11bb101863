// SPDX-License-Identifier: MIT
// Exercise 1: the bucket reduce of chapter 02 step 2 (DDP with overlap).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch02_ex1_bucket_reduce
//   mpirun -np 3 build/cpu/bin/ch02_ex1_bucket_reduce        (try -np 1, 2, 4 too)
// The check simulates a backward over 7 units: unit 6's gradients are written first, unit 0's
// last, and after each unit your function is called. Post a bucket's all-reduce exactly when
// the bucket is complete (not earlier: its gradients would still change; not later: the
// communication would not overlap the rest of the backward). It prints PASSED when every bucket
// was posted at the right moment and the gradients are the sums over ranks; else what is wrong.
// --hint 1 gives the idea and the API, --hint 2 the rule. The chapter's own version is in
// ../ddp.cpp: read it after you are done.
#include "chapters/02_data_parallel/exercises/check.hpp"

using namespace fivefold;
using namespace fivefold::ch02;

bool exercise_post_ready_bucket(Communicator& comm, Tensor& grads, const std::vector<Bucket>& buckets, int u,
                                std::vector<std::unique_ptr<Request>>& pending) {
  const std::size_t b = pending.size();  // buckets are posted in order: b is the next one
  if (b >= buckets.size()) return false;
  // EXERCISE: is bucket b complete now that unit u is done? A bucket holds units
  //           first_unit..last_unit and the backward runs from the last unit to the first.
  const bool complete = false;  // EXERCISE: replace false
  if (!complete) return false;
  // EXERCISE: post the non-blocking all-reduce (comm.iall_reduce) of the bucket's slice of grads
  //           (grads.flat(offset, numel): a view, so the result lands in grads) and keep the
  //           request in pending (it must live until it is waited for).
  return true;
}

int main(int argc, char** argv) { return check_bucket_reduce(argc, argv, exercise_post_ready_bucket); }
