// SPDX-License-Identifier: MIT
/// @file ddp.hpp
/// @brief ZeRO stage 0, DDP: every rank keeps a full replica of the parameters, the gradients and
/// AdamW's moments; the gradients are all-reduced, either one blocking all-reduce per parameter
/// after the backward (naive, --bucket-mb 0) or in buckets of whole units, each posted as a
/// non-blocking all-reduce as soon as its last unit's backward is done, so that it travels while
/// the backward of the earlier units runs (--no-overlap: the buckets after the backward).
#pragma once

#include <memory>
#include <vector>

#include "chapters/02_data_parallel/dp_trainer.hpp"

namespace fivefold::ch02 {

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
  void progress();
  Tensor params_, grads_;                          // [padded]: the replica and its gradient
  std::vector<Bucket> buckets_;
  std::vector<std::unique_ptr<Request>> pending_;  // this step's posted bucket all-reduces
  std::vector<double> posted_us_;                  // ... when each was posted (trace clock)
  std::vector<bool> done_;                         // ... whether its completion was seen
};

}  // namespace fivefold::ch02
