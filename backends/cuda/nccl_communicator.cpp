// SPDX-License-Identifier: MIT
// NcclCommunicator: each collective is one NCCL call on the communicator's stream; all_to_all(v)
// and point-to-point are ncclSend/ncclRecv inside one ncclGroupStart/End. Host tensors go to
// the shadow MpiCommunicator. Every call is counted here, once (the shadow does not count).
#include "backends/cuda/nccl_communicator.hpp"

#include <mpi.h>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/cuda_context.hpp"
#include "backends/cuda/nccl_detail.hpp"
#include "common/trace.hpp"

namespace fivefold {

namespace {

using nccl_detail::nccl_op;
using nccl_detail::nccl_type;
using nccl_detail::NcclGroup;
using nccl_detail::NcclRequest;

cudaStream_t compute_stream() { return cuda_context().stream; }

// True when the call's tensors are on the host (they go to MPI). Mixing devices is an error.
bool on_host(const char* op, const Tensor& a, const Tensor* b = nullptr) {
  FIVEFOLD_CHECK(b == nullptr || a.device() == b->device(), op, ": ", a.str(), " and ", b->str(),
                 " are on different devices; put both on the GPU (ops.upload) or both on the host");
  return a.device() == Device::host;
}

void check_reducible(const Tensor& t, ReduceOp op, const char* what) {
  FIVEFOLD_CHECK(t.dtype() == DType::f32 || op == ReduceOp::max, what, "(sum) needs f32, got ", t.str());
}

const char* at(const Tensor& t, std::int64_t elements) {
  return static_cast<const char*>(t.raw()) + static_cast<std::size_t>(elements) * dtype_size(t.dtype());
}

char* at(Tensor& t, std::int64_t elements) {
  return static_cast<char*>(t.raw()) + static_cast<std::size_t>(elements) * dtype_size(t.dtype());
}

}  // namespace

NcclCommunicator::NcclCommunicator(std::unique_ptr<MpiCommunicator> shadow, std::string name)
    : Communicator(std::move(name)), shadow_(std::move(shadow)) {
  shadow_->set_counting(false);
  // TUTORIAL: NCCL bootstraps from one id that rank 0 creates and everyone else receives by MPI.
  ncclUniqueId id{};
  if (rank() == 0) FIVEFOLD_CUDA_CHECK(ncclGetUniqueId(&id));
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, shadow_->handle());
  FIVEFOLD_CUDA_CHECK(cudaSetDevice(cuda_context().device));
  FIVEFOLD_CUDA_CHECK(ncclCommInitRank(&comm_, size(), id, rank()));
  create_stream();
}

NcclCommunicator::NcclCommunicator(std::unique_ptr<MpiCommunicator> shadow, ncclComm* comm, std::string name)
    : Communicator(std::move(name)), shadow_(std::move(shadow)), comm_(comm) {
  shadow_->set_counting(false);
  create_stream();
}

NcclCommunicator::~NcclCommunicator() {
  try {
    flush_p2p();  // requests that outlive us must find their batch issued
  } catch (...) {  // a destructor must not throw
  }
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  if (comm_ != nullptr) ncclCommDestroy(comm_);
  if (compute_ready_ != nullptr) cudaEventDestroy(compute_ready_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

std::unique_ptr<NcclCommunicator> NcclCommunicator::world() {
  MPI_Comm dup = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  return std::make_unique<NcclCommunicator>(std::make_unique<MpiCommunicator>(dup, "world (nccl shadow)", true),
                                            "world");
}

void NcclCommunicator::create_stream() {
  // Non-blocking: NCCL work never waits for unrelated work on the legacy default stream.
  FIVEFOLD_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  FIVEFOLD_CUDA_CHECK(cudaEventCreateWithFlags(&compute_ready_, cudaEventDisableTiming));
}

void NcclCommunicator::wait_for_compute() {
  // TUTORIAL: the communication stream starts only after every kernel queued so far on the
  // compute stream, so a collective never reads a half-computed buffer.
  FIVEFOLD_CUDA_CHECK(cudaEventRecord(compute_ready_, compute_stream()));
  FIVEFOLD_CUDA_CHECK(cudaStreamWaitEvent(stream_, compute_ready_, 0));
}

void NcclCommunicator::begin() {
  flush_p2p();  // program order: queued point-to-point goes first
  wait_for_compute();
}

void NcclCommunicator::end_blocking() { FIVEFOLD_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

std::shared_ptr<NcclBatch> NcclCommunicator::queue_p2p(bool is_send, const Tensor& buf, int peer) {
  FIVEFOLD_CHECK(peer >= 0 && peer < size(), (is_send ? "send" : "recv"), ": peer ", peer, " outside 0..",
                 size() - 1, " of group ", name());
  if (!batch_) batch_ = std::make_shared<NcclBatch>();
  pending_.push_back({is_send, buf, peer});
  return batch_;
}

void NcclCommunicator::flush_p2p() {
  if (pending_.empty()) return;
  std::vector<P2p> ops = std::move(pending_);
  pending_.clear();
  std::shared_ptr<NcclBatch> batch = std::move(batch_);
  batch_.reset();
  TraceSpan span("p2p group", "comm");
  wait_for_compute();
  NcclGroup group;
  for (P2p& p : ops) {
    const auto n = static_cast<std::size_t>(p.buf.numel());
    if (n == 0) continue;  // nothing to move; the peer skips its matching empty call too
    if (p.is_send) {
      group.add(ncclSend(p.buf.raw(), n, nccl_type(p.buf.dtype()), p.peer, comm_, stream_), "ncclSend");
    } else {
      group.add(ncclRecv(p.buf.raw(), n, nccl_type(p.buf.dtype()), p.peer, comm_, stream_), "ncclRecv");
    }
  }
  batch->issued = true;  // even if NCCL failed: nobody may try to issue it again
  group.end();
  FIVEFOLD_CUDA_CHECK(cudaEventRecord(batch->done, stream_));
  for (P2p& p : ops) batch->keep.push_back(std::move(p.buf));
}

void NcclCommunicator::enqueue_all_reduce(Tensor& buf, ReduceOp op, const char* what) {
  check_reducible(buf, op, what);
  begin();
  FIVEFOLD_CUDA_CHECK(ncclAllReduce(buf.raw(), buf.raw(), static_cast<std::size_t>(buf.numel()),
                                    nccl_type(buf.dtype()), nccl_op(op), comm_, stream_));
}

void NcclCommunicator::enqueue_all_gather(const Tensor& in, Tensor& out, const char* what) {
  FIVEFOLD_CHECK(out.numel() == in.numel() * size() && in.dtype() == out.dtype(), what, ": out ", out.str(),
                 " must hold ", size(), " x in ", in.str());
  begin();
  FIVEFOLD_CUDA_CHECK(ncclAllGather(in.raw(), out.raw(), static_cast<std::size_t>(in.numel()), nccl_type(in.dtype()),
                                    comm_, stream_));
}

void NcclCommunicator::enqueue_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op, const char* what) {
  FIVEFOLD_CHECK(in.numel() == out.numel() * size() && in.dtype() == out.dtype(), what, ": in ", in.str(),
                 " must hold ", size(), " x out ", out.str());
  check_reducible(in, op, what);
  begin();
  FIVEFOLD_CUDA_CHECK(ncclReduceScatter(in.raw(), out.raw(), static_cast<std::size_t>(out.numel()),
                                        nccl_type(in.dtype()), nccl_op(op), comm_, stream_));
}

std::unique_ptr<Request> NcclCommunicator::in_flight(std::shared_ptr<NcclBatch> batch,
                                                     std::initializer_list<Tensor> keep) {
  // TUTORIAL: no wait here. The event marks the end of the collective on our stream; the caller
  // computes meanwhile and waits on the request when it needs the result.
  for (const Tensor& t : keep) batch->keep.push_back(t);
  batch->issued = true;
  FIVEFOLD_CUDA_CHECK(cudaEventRecord(batch->done, stream_));
  return std::make_unique<NcclRequest>(std::move(batch), this);
}

void NcclCommunicator::all_reduce(Tensor& buf, ReduceOp op) {
  count("all_reduce", buf.nbytes());
  if (on_host("all_reduce", buf)) return shadow_->all_reduce(buf, op);
  TraceSpan span("all_reduce", "comm");
  enqueue_all_reduce(buf, op, "all_reduce");
  end_blocking();
}

void NcclCommunicator::all_gather(const Tensor& in, Tensor& out) {
  count("all_gather", in.nbytes());
  if (on_host("all_gather", in, &out)) return shadow_->all_gather(in, out);
  TraceSpan span("all_gather", "comm");
  enqueue_all_gather(in, out, "all_gather");
  end_blocking();
}

void NcclCommunicator::reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) {
  count("reduce_scatter", in.nbytes());
  if (on_host("reduce_scatter", in, &out)) return shadow_->reduce_scatter(in, out, op);
  TraceSpan span("reduce_scatter", "comm");
  enqueue_reduce_scatter(in, out, op, "reduce_scatter");
  end_blocking();
}

void NcclCommunicator::all_to_all(const Tensor& in, Tensor& out) {
  count("all_to_all", in.nbytes());
  if (on_host("all_to_all", in, &out)) return shadow_->all_to_all(in, out);
  FIVEFOLD_CHECK(in.numel() == out.numel() && in.numel() % size() == 0 && in.dtype() == out.dtype(),
                 "all_to_all: in ", in.str(), " and out ", out.str(), " must have equal sizes divisible by ", size());
  const std::vector<std::int64_t> counts(size(), in.numel() / size());
  TraceSpan span("all_to_all", "comm");
  // NCCL has no all-to-all primitive: it is a group of sends and receives, one pair per peer.
  all_to_allv_device(in, counts, out, counts);
}

void NcclCommunicator::all_to_allv(const Tensor& in, const std::vector<std::int64_t>& send_counts, Tensor& out,
                                   const std::vector<std::int64_t>& recv_counts) {
  std::int64_t sent = 0;
  for (auto c : send_counts) sent += c;
  count("all_to_allv", static_cast<std::size_t>(sent) * dtype_size(in.dtype()));
  if (on_host("all_to_allv", in, &out)) return shadow_->all_to_allv(in, send_counts, out, recv_counts);
  TraceSpan span("all_to_allv", "comm");
  all_to_allv_device(in, send_counts, out, recv_counts);
}

void NcclCommunicator::all_to_allv_device(const Tensor& in, const std::vector<std::int64_t>& send_counts, Tensor& out,
                                          const std::vector<std::int64_t>& recv_counts) {
  const int n = size();
  FIVEFOLD_CHECK(static_cast<int>(send_counts.size()) == n && static_cast<int>(recv_counts.size()) == n &&
                     in.dtype() == out.dtype(),
                 "all_to_allv: need ", n, " send and recv counts and one dtype for in ", in.str(), " and out ",
                 out.str());
  std::int64_t s_total = 0, r_total = 0;
  for (int i = 0; i < n; ++i) {
    FIVEFOLD_CHECK(send_counts[i] >= 0 && recv_counts[i] >= 0, "all_to_allv: negative count for rank ", i);
    s_total += send_counts[i];
    r_total += recv_counts[i];
  }
  FIVEFOLD_CHECK(s_total <= in.numel() && r_total <= out.numel(), "all_to_allv: counts (", s_total, " sent, ",
                 r_total, " received) exceed in ", in.str(), " or out ", out.str());
  begin();
  NcclGroup group;
  std::int64_t s_off = 0, r_off = 0;
  for (int j = 0; j < n; ++j) {
    // Zero-size blocks are skipped on both sides (the counts agree between the two ranks).
    if (send_counts[j] > 0) {
      group.add(ncclSend(at(in, s_off), static_cast<std::size_t>(send_counts[j]), nccl_type(in.dtype()), j, comm_,
                         stream_), "ncclSend");
    }
    if (recv_counts[j] > 0) {
      group.add(ncclRecv(at(out, r_off), static_cast<std::size_t>(recv_counts[j]), nccl_type(out.dtype()), j, comm_,
                         stream_), "ncclRecv");
    }
    s_off += send_counts[j];
    r_off += recv_counts[j];
  }
  group.end();
  end_blocking();
}

void NcclCommunicator::broadcast(Tensor& buf, int root) {
  count("broadcast", buf.nbytes());
  if (on_host("broadcast", buf)) return shadow_->broadcast(buf, root);
  FIVEFOLD_CHECK(root >= 0 && root < size(), "broadcast: root ", root, " outside 0..", size() - 1);
  TraceSpan span("broadcast", "comm");
  begin();
  FIVEFOLD_CUDA_CHECK(ncclBroadcast(buf.raw(), buf.raw(), static_cast<std::size_t>(buf.numel()),
                                    nccl_type(buf.dtype()), root, comm_, stream_));
  end_blocking();
}

void NcclCommunicator::send(const Tensor& buf, int peer, int tag) {
  count("send", buf.nbytes());
  if (on_host("send", buf)) return shadow_->send(buf, peer, tag);
  TraceSpan span("send", "comm");
  queue_p2p(true, buf, peer);  // joins any queued isend/irecv in one group
  flush_p2p();
  end_blocking();
}

void NcclCommunicator::recv(Tensor& buf, int peer, int tag) {
  count("recv", buf.nbytes());
  if (on_host("recv", buf)) return shadow_->recv(buf, peer, tag);
  TraceSpan span("recv", "comm");
  queue_p2p(false, buf, peer);
  flush_p2p();
  end_blocking();
}

void NcclCommunicator::sendrecv(const Tensor& send_buf, int dst, Tensor& recv_buf, int src, int tag) {
  count("sendrecv", send_buf.nbytes());
  if (on_host("sendrecv", send_buf, &recv_buf)) return shadow_->sendrecv(send_buf, dst, recv_buf, src, tag);
  TraceSpan span("sendrecv", "comm");
  // TUTORIAL: send and receive in one NCCL group, so neither waits for the other (no deadlock
  // when every rank of a ring sends right and receives from the left at the same time).
  queue_p2p(true, send_buf, dst);
  queue_p2p(false, recv_buf, src);
  flush_p2p();
  end_blocking();
}

std::unique_ptr<Request> NcclCommunicator::isend(const Tensor& buf, int peer, int tag) {
  count("isend", buf.nbytes());
  if (on_host("isend", buf)) return shadow_->isend(buf, peer, tag);
  return std::make_unique<NcclRequest>(queue_p2p(true, buf, peer), this);
}

std::unique_ptr<Request> NcclCommunicator::irecv(Tensor& buf, int peer, int tag) {
  count("irecv", buf.nbytes());
  if (on_host("irecv", buf)) return shadow_->irecv(buf, peer, tag);
  return std::make_unique<NcclRequest>(queue_p2p(false, buf, peer), this);
}

std::unique_ptr<Request> NcclCommunicator::iall_reduce(Tensor& buf, ReduceOp op) {
  count("iall_reduce", buf.nbytes());
  if (on_host("iall_reduce", buf)) return shadow_->iall_reduce(buf, op);
  auto batch = std::make_shared<NcclBatch>();  // its event exists before anything is queued
  enqueue_all_reduce(buf, op, "iall_reduce");
  return in_flight(std::move(batch), {buf});
}

std::unique_ptr<Request> NcclCommunicator::iall_gather(const Tensor& in, Tensor& out) {
  count("iall_gather", in.nbytes());
  if (on_host("iall_gather", in, &out)) return shadow_->iall_gather(in, out);
  auto batch = std::make_shared<NcclBatch>();  // its event exists before anything is queued
  enqueue_all_gather(in, out, "iall_gather");
  return in_flight(std::move(batch), {in, out});
}

std::unique_ptr<Request> NcclCommunicator::ireduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) {
  count("ireduce_scatter", in.nbytes());
  if (on_host("ireduce_scatter", in, &out)) return shadow_->ireduce_scatter(in, out, op);
  auto batch = std::make_shared<NcclBatch>();  // its event exists before anything is queued
  enqueue_reduce_scatter(in, out, op, "ireduce_scatter");
  return in_flight(std::move(batch), {in, out});
}

void NcclCommunicator::barrier() {
  count("barrier", 0);
  shadow_->barrier();
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key, const std::string& name) {
  FIVEFOLD_CHECK(color >= 0, "split: color ", color, " must be >= 0 (group ", name, ")");
  flush_p2p();
  MPI_Comm sub = MPI_COMM_NULL;
  const int rc = MPI_Comm_split(shadow_->handle(), color, key, &sub);
  FIVEFOLD_CHECK(rc == MPI_SUCCESS, "MPI_Comm_split(color ", color, ", key ", key, ") failed for group ", name);
  auto shadow = std::make_unique<MpiCommunicator>(sub, name + " (nccl shadow)", true);
  ncclComm_t child = nullptr;
  FIVEFOLD_CUDA_CHECK(ncclCommSplit(comm_, color, key, &child, nullptr));
  int child_rank = -1;
  FIVEFOLD_CUDA_CHECK(ncclCommUserRank(child, &child_rank));
  FIVEFOLD_CHECK(child_rank == shadow->rank(), "split: NCCL placed this rank at ", child_rank, " but MPI at ",
                 shadow->rank(), " in group ", name);
  return std::unique_ptr<Communicator>(new NcclCommunicator(std::move(shadow), child, name));
}

}  // namespace fivefold
