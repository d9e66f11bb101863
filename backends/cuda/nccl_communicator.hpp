// SPDX-License-Identifier: MIT
/// @file nccl_communicator.hpp
/// @brief Communicator over NCCL: CUDA tensors move GPU to GPU, one GPU per rank.
///
/// Set-up: rank 0 makes an ncclUniqueId, MPI broadcasts it, every rank joins with
/// ncclCommInitRank. Each communicator keeps a shadow MPI communicator over the same ranks
/// (for the id broadcast, split, barrier, and host tensors, which go to MPI).
///
/// Streams: NCCL work runs on this communicator's own stream, which first waits for the
/// compute stream, so a collective sees every kernel queued before it. Blocking methods wait
/// for the stream before returning; iall_reduce, iall_gather and ireduce_scatter return at once
/// with a Request that waits on a CUDA event, so compute can overlap with communication.
///
/// Point-to-point: NCCL has no tags and a lone ncclSend blocks its stream until the peer
/// receives, so two ranks that both isend before they irecv would deadlock. isend/irecv are
/// therefore queued and issued together in one ncclGroupStart/End when a request is waited
/// on or tested, or with the next blocking call on this communicator. Tags are ignored:
/// messages between two ranks match in the order they were posted.
#pragma once

#include <initializer_list>

#include <memory>
#include <string>
#include <vector>

#include "backends/communicator.hpp"
#include "backends/cpu/mpi_communicator.hpp"

struct ncclComm;     // ncclComm_t is ncclComm*
struct CUstream_st;  // cudaStream_t is CUstream_st*
struct CUevent_st;   // cudaEvent_t is CUevent_st*

namespace fivefold {

/// Queued point-to-point operations issued as one NCCL group, and the event marking their end.
struct NcclBatch;

/// NCCL implementation of Communicator (CUDA tensors; host tensors go to the shadow MPI comm).
class NcclCommunicator : public Communicator {
 public:
  /// Creates an NCCL communicator over the ranks of @p shadow (collective over them).
  NcclCommunicator(std::unique_ptr<MpiCommunicator> shadow, std::string name);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;
  /// Every rank of the job (shadow: a duplicate of MPI_COMM_WORLD), named "world".
  static std::unique_ptr<NcclCommunicator> world();

  int rank() const override { return shadow_->rank(); }
  int size() const override { return shadow_->size(); }
  std::string kind() const override { return "nccl"; }

  void all_reduce(Tensor& buf, ReduceOp op) override;
  void all_gather(const Tensor& in, Tensor& out) override;
  void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) override;
  void all_to_all(const Tensor& in, Tensor& out) override;
  void all_to_allv(const Tensor& in, const std::vector<std::int64_t>& send_counts, Tensor& out,
                   const std::vector<std::int64_t>& recv_counts) override;
  void broadcast(Tensor& buf, int root) override;
  void send(const Tensor& buf, int peer, int tag) override;
  void recv(Tensor& buf, int peer, int tag) override;
  void sendrecv(const Tensor& send_buf, int dst, Tensor& recv_buf, int src, int tag) override;
  std::unique_ptr<Request> isend(const Tensor& buf, int peer, int tag) override;
  std::unique_ptr<Request> irecv(Tensor& buf, int peer, int tag) override;
  std::unique_ptr<Request> iall_reduce(Tensor& buf, ReduceOp op) override;
  std::unique_ptr<Request> iall_gather(const Tensor& in, Tensor& out) override;
  std::unique_ptr<Request> ireduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) override;
  void barrier() override;
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override;

  /// Issues the queued isend/irecv operations as one NCCL group (requests call this).
  void flush_p2p();

 private:
  /// One queued point-to-point operation.
  struct P2p {
    bool is_send;  ///< send or receive
    Tensor buf;    ///< the buffer (kept alive until the operation completes)
    int peer;      ///< the other rank
  };

  NcclCommunicator(std::unique_ptr<MpiCommunicator> shadow, ncclComm* comm, std::string name);
  void create_stream();
  void wait_for_compute();  // our stream waits for the work queued so far on the compute stream
  void begin();             // flushes queued p2p, then wait_for_compute()
  void end_blocking();      // waits for our stream
  /// After a collective queued on our stream: records @p batch's event (the collective's end)
  /// and returns a request on it that keeps @p keep alive until then (the non-blocking calls
  /// return it instead of waiting).
  std::unique_ptr<Request> in_flight(std::shared_ptr<NcclBatch> batch, std::initializer_list<Tensor> keep);
  // Checks the buffers (errors name @p what), begin(), then queues the NCCL call on our stream.
  void enqueue_all_reduce(Tensor& buf, ReduceOp op, const char* what);
  void enqueue_all_gather(const Tensor& in, Tensor& out, const char* what);
  void enqueue_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op, const char* what);
  void all_to_allv_device(const Tensor& in, const std::vector<std::int64_t>& send_counts, Tensor& out,
                          const std::vector<std::int64_t>& recv_counts);
  std::shared_ptr<NcclBatch> queue_p2p(bool is_send, const Tensor& buf, int peer);

  std::unique_ptr<MpiCommunicator> shadow_;
  ncclComm* comm_ = nullptr;
  CUstream_st* stream_ = nullptr;
  CUevent_st* compute_ready_ = nullptr;
  std::vector<P2p> pending_;
  std::shared_ptr<NcclBatch> batch_;  // the batch pending_ belongs to
};

}  // namespace fivefold
