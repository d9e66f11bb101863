// SPDX-License-Identifier: MIT
/// @file ddp.hpp
/// @brief ZeRO stage 0, DDP: every rank keeps a full replica of the parameters, the gradients and
/// AdamW's moments; the gradients are all-reduced, either one blocking all-reduce per parameter
/// after the backward (naive, --bucket-mb 0) or in buckets of whole units, each posted as a
/// non-blocking all-reduce as soon as its last unit's backward is done, so that it travels while
/// the backward of the earlier units runs (--no-overlap: the buckets after the backward).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "chapters/02_data_parallel/dp_trainer.hpp"

namespace fivefold::ch02 {

/// The bucket all-reduces of one step: posted during the backward (post_ready_bucket), tested
/// between units so that MPI moves them on, waited for after the backward. Shared by Ddp and
/// chapter 07's ShardDdp.
class PostedBuckets {
 public:
  /// Called when the completion of bucket @p b, posted at @p posted_us (trace clock), is seen.
  using Done = std::function<void(std::size_t b, double posted_us)>;
  /// Posts the next bucket's iall_reduce over @p comm if unit @p u completes it; true if posted.
  bool post(Communicator& comm, Tensor& grads, const std::vector<Bucket>& buckets, int u);
  /// Tests (or, with @p wait, waits for) every posted bucket not yet seen complete, calling
  /// @p done once for each completion seen.
  void poll(bool wait, const Done& done);
  /// Buckets posted this step.
  std::size_t posted() const { return requests_.size(); }
  /// Forgets the step's buckets (all must have completed).
  void clear();

 private:
  std::vector<std::unique_ptr<Request>> requests_;  // this step's posted bucket all-reduces
  std::vector<double> posted_us_;                   // ... when each was posted (trace clock)
  std::vector<bool> done_;                          // ... whether its completion was seen
};

/// Stage 0 (see the file comment).
class Ddp : public DpTrainer {
 public:
  /// A replica drawn from the seed, its gradient buffer and optimizer, the buckets.
  Ddp(Ops& ops, Communicator& comm, const ModelConfig& cfg, const DpConfig& dc);
  void zero_grad() override { ops_->fill(grads_, 0.0f); }
  nn::UnitHooks hooks(bool last) override;
  void finish() override;
  void update() override;
  Tensor dense_params() override { return layout_.to_dense(*ops_, params_); }
  Tensor dense_grads() override { return layout_.to_dense(*ops_, grads_); }
  const std::vector<Bucket>& buckets() const override { return buckets_; }

 private:
  void poll(bool wait);
  Tensor params_, grads_;  // [padded]: the replica and its gradient
  std::vector<Bucket> buckets_;
  PostedBuckets posted_;   // this step's bucket all-reduces in flight
};

}  // namespace fivefold::ch02
