// SPDX-License-Identifier: MIT
/// @file nccl_detail.hpp
/// @brief Internals of NcclCommunicator (included by nccl_communicator.cpp only): the batch of
/// queued point-to-point operations, the Request that waits on it, and an NCCL group guard.
#pragma once

#include <memory>
#include <vector>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/nccl_communicator.hpp"

namespace fivefold {

/// Queued point-to-point operations issued as one NCCL group, and the event marking their end.
struct NcclBatch {
  cudaEvent_t done = nullptr;  ///< recorded on the communicator's stream after the group
  bool issued = false;         ///< true once the group has been handed to NCCL
  std::vector<Tensor> keep;    ///< buffers kept alive until the batch completes
  /// Creates the completion event.
  NcclBatch() { FIVEFOLD_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming)); }
  /// Destroys the completion event.
  ~NcclBatch() { cudaEventDestroy(done); }
  NcclBatch(const NcclBatch&) = delete;
  NcclBatch& operator=(const NcclBatch&) = delete;
};

namespace nccl_detail {

/// NCCL's element type for @p t.
inline ncclDataType_t nccl_type(DType t) { return t == DType::f32 ? ncclFloat32 : ncclInt32; }
/// NCCL's reduction for @p op.
inline ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::sum ? ncclSum : ncclMax; }

/// ncclGroupStart ... ncclGroupEnd; the first failing call inside is reported after the end
/// (the group must be closed whatever happens).
class NcclGroup {
 public:
  /// Opens the group.
  NcclGroup() { FIVEFOLD_CUDA_CHECK(ncclGroupStart()); }
  /// Closes the group if end() was not reached (an exception is on its way).
  ~NcclGroup() {
    if (!ended_) ncclGroupEnd();
  }
  /// Records the result @p rc of @p call made inside the group.
  void add(ncclResult_t rc, const char* call) {
    if (rc != ncclSuccess && first_ == ncclSuccess) {
      first_ = rc;
      call_ = call;
    }
  }
  /// Closes the group and throws Error for the first failure inside it or of the group itself.
  void end() {
    ended_ = true;
    const ncclResult_t rc = ncclGroupEnd();
    cuda_detail::check(first_, call_, __FILE__, __LINE__);
    FIVEFOLD_CUDA_CHECK(rc);
  }

 private:
  bool ended_ = false;
  ncclResult_t first_ = ncclSuccess;
  const char* call_ = "";
};

/// Waits on a batch's event; issues the batch first if it is still queued.
class NcclRequest : public Request {
 public:
  /// Completion of @p batch, issued through @p owner if still queued.
  NcclRequest(std::shared_ptr<NcclBatch> batch, NcclCommunicator* owner) : batch_(std::move(batch)), owner_(owner) {}
  /// Waits (errors are swallowed: a destructor must not throw).
  ~NcclRequest() override {
    try {
      wait();
    } catch (...) {  // a destructor must not throw
    }
  }
  void wait() override {
    if (!batch_) return;
    if (!batch_->issued) owner_->flush_p2p();
    FIVEFOLD_CUDA_CHECK(cudaEventSynchronize(batch_->done));
    release();
  }
  bool test() override {
    if (!batch_) return true;
    if (!batch_->issued) owner_->flush_p2p();
    const cudaError_t rc = cudaEventQuery(batch_->done);
    if (rc == cudaErrorNotReady) return false;
    FIVEFOLD_CUDA_CHECK(rc);
    release();
    return true;
  }

 private:
  void release() {
    batch_->keep.clear();  // the whole batch is done: its buffers may go
    batch_.reset();
  }
  std::shared_ptr<NcclBatch> batch_;
  NcclCommunicator* owner_;  // only used while the batch is queued; its destructor issues it
};

}  // namespace nccl_detail

}  // namespace fivefold
