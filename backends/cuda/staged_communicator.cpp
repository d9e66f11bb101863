// SPDX-License-Identifier: MIT
// StagedCommunicator: device tensor -> host copy -> MPI -> copy back. Each method counts the
// call once (the table in communicator.hpp) and hands host tensors to MPI unchanged; the inner
// MpiCommunicator has its counting switched off so nothing is counted twice.
#include "backends/cuda/staged_communicator.hpp"

#include <mpi.h>

#include "common/trace.hpp"

namespace fivefold {

namespace {

// Both tensors of a call on one device, as NcclCommunicator requires too (one behaviour for both).
void same_device(const char* op, const Tensor& a, const Tensor& b) {
  FIVEFOLD_CHECK(a.device() == b.device(), op, ": ", a.str(), " and ", b.str(),
                 " are on different devices; put both on the GPU (ops.upload) or both on the host");
}

// Host copy of a tensor for MPI to read (the tensor itself when it is on the host already).
Tensor to_host(const Tensor& t) {
  if (t.device() == Device::host) return t;
  TraceSpan span("stage to host", "copy");
  return t.to(Device::host);
}

// Host buffer for MPI to write into (the tensor itself when it is on the host already).
Tensor host_buffer(const Tensor& t) {
  return t.device() == Device::host ? t : Tensor::empty(t.shape(), t.dtype(), Device::host);
}

// Copies MPI's result back to the device tensor (nothing to do for a host tensor).
void from_host(Tensor& dst, const Tensor& host) {
  if (dst.device() == Device::host) return;
  TraceSpan span("stage to device", "copy");
  dst.copy_from(host);
}

// Completes the inner MPI request, then copies the received data to the device tensor.
class StagedRequest : public Request {
 public:
  StagedRequest(std::unique_ptr<Request> inner, Tensor host, Tensor dst, bool copy_back)
      : inner_(std::move(inner)), host_(std::move(host)), dst_(std::move(dst)), copy_back_(copy_back) {}
  ~StagedRequest() override {
    try {
      wait();
    } catch (...) {  // a destructor must not throw; wait() reported nothing to anyone here
    }
  }
  void wait() override {
    if (done_) return;
    inner_->wait();
    finish();
  }
  bool test() override {
    if (done_) return true;
    if (!inner_->test()) return false;
    finish();
    return true;
  }

 private:
  void finish() {
    done_ = true;
    if (copy_back_) from_host(dst_, host_);
  }
  std::unique_ptr<Request> inner_;
  Tensor host_;  // the staging buffer MPI reads or writes; kept alive until completion
  Tensor dst_;   // the device tensor that receives the result
  bool copy_back_;
  bool done_ = false;
};

}  // namespace

StagedCommunicator::StagedCommunicator(std::unique_ptr<MpiCommunicator> inner, std::string name)
    : Communicator(std::move(name)), inner_(std::move(inner)) {
  inner_->set_counting(false);
}

std::unique_ptr<StagedCommunicator> StagedCommunicator::world() {
  MPI_Comm dup = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  return std::make_unique<StagedCommunicator>(std::make_unique<MpiCommunicator>(dup, "world (staged)", true), "world");
}

void StagedCommunicator::all_reduce(Tensor& buf, ReduceOp op) {
  count("all_reduce", buf.nbytes());
  Tensor h = to_host(buf);
  inner_->all_reduce(h, op);
  from_host(buf, h);
}

void StagedCommunicator::all_gather(const Tensor& in, Tensor& out) {
  count("all_gather", in.nbytes());
  same_device("all_gather", in, out);
  Tensor h_out = host_buffer(out);
  inner_->all_gather(to_host(in), h_out);
  from_host(out, h_out);
}

void StagedCommunicator::reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) {
  count("reduce_scatter", in.nbytes());
  same_device("reduce_scatter", in, out);
  Tensor h_out = host_buffer(out);
  inner_->reduce_scatter(to_host(in), h_out, op);
  from_host(out, h_out);
}

void StagedCommunicator::all_to_all(const Tensor& in, Tensor& out) {
  count("all_to_all", in.nbytes());
  same_device("all_to_all", in, out);
  Tensor h_out = host_buffer(out);
  inner_->all_to_all(to_host(in), h_out);
  from_host(out, h_out);
}

void StagedCommunicator::all_to_allv(const Tensor& in, const std::vector<std::int64_t>& send_counts, Tensor& out,
                                     const std::vector<std::int64_t>& recv_counts) {
  std::int64_t sent = 0;
  for (auto c : send_counts) sent += c;
  count("all_to_allv", static_cast<std::size_t>(sent) * dtype_size(in.dtype()));
  same_device("all_to_allv", in, out);
  std::int64_t received = 0;
  for (auto c : recv_counts) received += c;
  Tensor h_out = host_buffer(out);
  inner_->all_to_allv(to_host(in), send_counts, h_out, recv_counts);
  if (out.device() == Device::host) return;
  // Only the received prefix comes back; elements of out beyond it keep their values, as in MPI.
  TraceSpan span("stage to device", "copy");
  out.flat(0, received).copy_from(h_out.flat(0, received));
}

void StagedCommunicator::broadcast(Tensor& buf, int root) {
  count("broadcast", buf.nbytes());
  Tensor h = to_host(buf);
  inner_->broadcast(h, root);
  from_host(buf, h);
}

void StagedCommunicator::send(const Tensor& buf, int peer, int tag) {
  count("send", buf.nbytes());
  inner_->send(to_host(buf), peer, tag);
}

void StagedCommunicator::recv(Tensor& buf, int peer, int tag) {
  count("recv", buf.nbytes());
  Tensor h = host_buffer(buf);
  inner_->recv(h, peer, tag);
  from_host(buf, h);
}

void StagedCommunicator::sendrecv(const Tensor& send_buf, int dst, Tensor& recv_buf, int src, int tag) {
  count("sendrecv", send_buf.nbytes());
  same_device("sendrecv", send_buf, recv_buf);
  Tensor h = host_buffer(recv_buf);
  inner_->sendrecv(to_host(send_buf), dst, h, src, tag);
  from_host(recv_buf, h);
}

std::unique_ptr<Request> StagedCommunicator::isend(const Tensor& buf, int peer, int tag) {
  count("isend", buf.nbytes());
  Tensor h = to_host(buf);
  auto r = inner_->isend(h, peer, tag);
  return std::make_unique<StagedRequest>(std::move(r), h, buf, false);
}

std::unique_ptr<Request> StagedCommunicator::irecv(Tensor& buf, int peer, int tag) {
  count("irecv", buf.nbytes());
  Tensor h = host_buffer(buf);
  auto r = inner_->irecv(h, peer, tag);
  return std::make_unique<StagedRequest>(std::move(r), h, buf, true);
}

std::unique_ptr<Request> StagedCommunicator::iall_reduce(Tensor& buf, ReduceOp op) {
  count("iall_reduce", buf.nbytes());
  Tensor h = to_host(buf);
  auto r = inner_->iall_reduce(h, op);
  return std::make_unique<StagedRequest>(std::move(r), h, buf, true);
}

void StagedCommunicator::barrier() {
  count("barrier", 0);
  inner_->barrier();
}

std::unique_ptr<Communicator> StagedCommunicator::split(int color, int key, const std::string& name) {
  MPI_Comm sub = MPI_COMM_NULL;
  const int rc = MPI_Comm_split(inner_->handle(), color, key, &sub);
  FIVEFOLD_CHECK(rc == MPI_SUCCESS, "MPI_Comm_split(color ", color, ", key ", key, ") failed for group ", name);
  return std::make_unique<StagedCommunicator>(std::make_unique<MpiCommunicator>(sub, name + " (staged)", true), name);
}

}  // namespace fivefold
