// SPDX-License-Identifier: MIT
/// @file check.hpp
/// @brief The checks the chapter 02 exercises run on a routine (yours, or the chapter library's
/// solution): the bucket reduce of step 2 and the ZeRO-1 update of step 3, on integer-valued
/// gradients (every sum exact whatever the order) at any world size.
#pragma once

#include <memory>
#include <vector>

#include "backends/communicator.hpp"
#include "chapters/02_data_parallel/dp_trainer.hpp"
#include "nn/adamw.hpp"

namespace fivefold::ch02 {

/// The routine of exercise 1 (see post_ready_bucket in dp_trainer.hpp).
using PostReadyBucketFn = bool (*)(Communicator& comm, Tensor& grads, const std::vector<Bucket>& buckets, int u,
                                   std::vector<std::unique_ptr<Request>>& pending);
/// The routine of exercise 2 (see zero1_update in dp_trainer.hpp).
using Zero1UpdateFn = void (*)(Communicator& comm, Tensor& params, const Tensor& grads, Tensor& grad_shard,
                               Tensor& send, nn::AdamW& opt);

/// Runs a simulated backward over 7 units of uneven sizes; after each unit's gradients are
/// written, calls @p fn; checks every bucket was posted exactly when its last unit finished (not
/// before, not after) and that the reduced gradients equal the sum over ranks. Prints PASSED or
/// what went wrong on rank 0; returns 0 only when every rank passed.
int check_bucket_reduce(int argc, char** argv, PostReadyBucketFn fn);
/// Runs @p fn once on a padded flat buffer and checks the parameters on every rank against a
/// full all-reduce followed by AdamW on the whole buffer. Returns 0 only when every rank passed.
int check_zero1_update(int argc, char** argv, Zero1UpdateFn fn);

}  // namespace fivefold::ch02
