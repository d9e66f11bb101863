// SPDX-License-Identifier: MIT
// MpiCommunicator: each Communicator method is one MPI call on host memory, counted per group.
#include "backends/cpu/mpi_communicator.hpp"

#include <climits>
#include <vector>

#include "common/trace.hpp"

namespace fivefold {

namespace {

MPI_Datatype mpi_type(DType t) { return t == DType::f32 ? MPI_FLOAT : MPI_INT; }
MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::sum ? MPI_SUM : MPI_MAX; }

void check_host(const Tensor& t, const char* op) {
  FIVEFOLD_CHECK(t.device() == Device::host, op, ": MPI communicator got ", t.str(),
                 "; CUDA tensors go through the cuda backend's communicator");
}

int count_int(std::int64_t n, const char* op) {
  FIVEFOLD_CHECK(n <= INT_MAX, op, ": ", n, " elements exceed MPI's int count; split the buffer");
  return static_cast<int>(n);
}

void check_peer(int peer, int size, const char* op) {
  FIVEFOLD_CHECK(peer >= 0 && peer < size, op, ": peer ", peer, " outside 0..", size - 1,
                 "; pass a rank of this group (group ranks, not world ranks)");
}

void check_reducible(const Tensor& t, ReduceOp op, const char* name) {
  FIVEFOLD_CHECK(t.dtype() == DType::f32 || op == ReduceOp::max, name, "(sum) needs f32, got ", t.str());
}

void mpi_ok(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(std::string(call) + " failed: " + std::string(text, len));
}

class MpiRequest : public Request {
 public:
  MpiRequest() = default;
  ~MpiRequest() override {
    if (req_ != MPI_REQUEST_NULL) MPI_Wait(&req_, MPI_STATUS_IGNORE);
  }
  void wait() override { mpi_ok(MPI_Wait(&req_, MPI_STATUS_IGNORE), "MPI_Wait"); }
  bool test() override {
    int done = 0;
    mpi_ok(MPI_Test(&req_, &done, MPI_STATUS_IGNORE), "MPI_Test");
    return done != 0;
  }
  MPI_Request* handle() { return &req_; }

 private:
  MPI_Request req_ = MPI_REQUEST_NULL;
};

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::string name, bool owned)
    : Communicator(std::move(name)), comm_(comm), owned_(owned) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
}

MpiCommunicator::~MpiCommunicator() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (owned_ && !finalised) MPI_Comm_free(&comm_);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::world() {
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world", false);
}

void MpiCommunicator::all_reduce(Tensor& buf, ReduceOp op) {
  check_host(buf, "all_reduce");
  check_reducible(buf, op, "all_reduce");
  TraceSpan span("all_reduce", "comm");
  count("all_reduce", buf.nbytes());
  mpi_ok(MPI_Allreduce(MPI_IN_PLACE, buf.raw(), count_int(buf.numel(), "all_reduce"), mpi_type(buf.dtype()),
                       mpi_op(op), comm_), "MPI_Allreduce");
}

void MpiCommunicator::all_gather(const Tensor& in, Tensor& out) {
  check_host(in, "all_gather");
  check_host(out, "all_gather");
  FIVEFOLD_CHECK(out.numel() == in.numel() * size_ && in.dtype() == out.dtype(), "all_gather: out ", out.str(),
                 " must hold ", size_, " x in ", in.str());
  TraceSpan span("all_gather", "comm");
  count("all_gather", in.nbytes());
  const int n = count_int(in.numel(), "all_gather");
  mpi_ok(MPI_Allgather(in.raw(), n, mpi_type(in.dtype()), out.raw(), n, mpi_type(out.dtype()), comm_),
         "MPI_Allgather");
}

void MpiCommunicator::reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) {
  check_host(in, "reduce_scatter");
  check_host(out, "reduce_scatter");
  FIVEFOLD_CHECK(in.numel() == out.numel() * size_ && in.dtype() == out.dtype(), "reduce_scatter: in ", in.str(),
                 " must hold ", size_, " x out ", out.str());
  check_reducible(in, op, "reduce_scatter");
  TraceSpan span("reduce_scatter", "comm");
  count("reduce_scatter", in.nbytes());
  mpi_ok(MPI_Reduce_scatter_block(in.raw(), out.raw(), count_int(out.numel(), "reduce_scatter"),
                                  mpi_type(in.dtype()), mpi_op(op), comm_),
         "MPI_Reduce_scatter_block");
}

void MpiCommunicator::all_to_all(const Tensor& in, Tensor& out) {
  check_host(in, "all_to_all");
  check_host(out, "all_to_all");
  FIVEFOLD_CHECK(in.numel() == out.numel() && in.numel() % size_ == 0 && in.dtype() == out.dtype(),
                 "all_to_all: in ", in.str(), " and out ", out.str(), " must have equal sizes divisible by ",
                 size_);
  TraceSpan span("all_to_all", "comm");
  count("all_to_all", in.nbytes());
  const int n = count_int(in.numel() / size_, "all_to_all");
  mpi_ok(MPI_Alltoall(in.raw(), n, mpi_type(in.dtype()), out.raw(), n, mpi_type(out.dtype()), comm_),
         "MPI_Alltoall");
}

void MpiCommunicator::all_to_allv(const Tensor& in, const std::vector<std::int64_t>& send_counts, Tensor& out,
                                  const std::vector<std::int64_t>& recv_counts) {
  check_host(in, "all_to_allv");
  check_host(out, "all_to_allv");
  FIVEFOLD_CHECK(static_cast<int>(send_counts.size()) == size_ && static_cast<int>(recv_counts.size()) == size_,
                 "all_to_allv: need ", size_, " send and recv counts, got ", send_counts.size(), " and ",
                 recv_counts.size());
  FIVEFOLD_CHECK(in.dtype() == out.dtype(), "all_to_allv: in ", in.str(), " and out ", out.str(),
                 " must have the same dtype");
  std::vector<int> sc(size_), sd(size_), rc(size_), rd(size_);
  std::int64_t s_total = 0, r_total = 0;
  for (int i = 0; i < size_; ++i) {
    FIVEFOLD_CHECK(send_counts[i] >= 0 && recv_counts[i] >= 0, "all_to_allv: counts for rank ", i, " are ",
                   send_counts[i], " sent and ", recv_counts[i], " received; counts must be >= 0");
    sc[i] = count_int(send_counts[i], "all_to_allv");
    rc[i] = count_int(recv_counts[i], "all_to_allv");
    sd[i] = count_int(s_total, "all_to_allv");
    rd[i] = count_int(r_total, "all_to_allv");
    s_total += send_counts[i];
    r_total += recv_counts[i];
  }
  FIVEFOLD_CHECK(s_total <= in.numel() && r_total <= out.numel(), "all_to_allv: counts (", s_total, " sent, ",
                 r_total, " received) exceed in ", in.str(), " or out ", out.str());
  TraceSpan span("all_to_allv", "comm");
  count("all_to_allv", static_cast<std::size_t>(s_total) * dtype_size(in.dtype()));
  mpi_ok(MPI_Alltoallv(in.raw(), sc.data(), sd.data(), mpi_type(in.dtype()), out.raw(), rc.data(), rd.data(),
                       mpi_type(out.dtype()), comm_),
         "MPI_Alltoallv");
}

void MpiCommunicator::broadcast(Tensor& buf, int root) {
  check_host(buf, "broadcast");
  FIVEFOLD_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " outside 0..", size_ - 1);
  TraceSpan span("broadcast", "comm");
  count("broadcast", buf.nbytes());
  mpi_ok(MPI_Bcast(buf.raw(), count_int(buf.numel(), "broadcast"), mpi_type(buf.dtype()), root, comm_),
         "MPI_Bcast");
}

void MpiCommunicator::send(const Tensor& buf, int peer, int tag) {
  check_host(buf, "send");
  check_peer(peer, size_, "send");
  TraceSpan span("send", "comm");
  count("send", buf.nbytes());
  mpi_ok(MPI_Send(buf.raw(), count_int(buf.numel(), "send"), mpi_type(buf.dtype()), peer, tag, comm_), "MPI_Send");
}

void MpiCommunicator::recv(Tensor& buf, int peer, int tag) {
  check_host(buf, "recv");
  check_peer(peer, size_, "recv");
  TraceSpan span("recv", "comm");
  count("recv", buf.nbytes());
  mpi_ok(MPI_Recv(buf.raw(), count_int(buf.numel(), "recv"), mpi_type(buf.dtype()), peer, tag, comm_,
                  MPI_STATUS_IGNORE),
         "MPI_Recv");
}

void MpiCommunicator::sendrecv(const Tensor& send_buf, int dst, Tensor& recv_buf, int src, int tag) {
  check_host(send_buf, "sendrecv");
  check_host(recv_buf, "sendrecv");
  check_peer(dst, size_, "sendrecv");
  check_peer(src, size_, "sendrecv");
  FIVEFOLD_CHECK(send_buf.dtype() == recv_buf.dtype(), "sendrecv: send ", send_buf.str(), " and recv ",
                 recv_buf.str(), " must have the same dtype");
  TraceSpan span("sendrecv", "comm");
  count("sendrecv", send_buf.nbytes());
  mpi_ok(MPI_Sendrecv(send_buf.raw(), count_int(send_buf.numel(), "sendrecv"), mpi_type(send_buf.dtype()), dst, tag,
                      recv_buf.raw(), count_int(recv_buf.numel(), "sendrecv"), mpi_type(recv_buf.dtype()), src, tag,
                      comm_, MPI_STATUS_IGNORE),
         "MPI_Sendrecv");
}

std::unique_ptr<Request> MpiCommunicator::isend(const Tensor& buf, int peer, int tag) {
  check_host(buf, "isend");
  check_peer(peer, size_, "isend");
  count("isend", buf.nbytes());
  auto r = std::make_unique<MpiRequest>();
  mpi_ok(MPI_Isend(buf.raw(), count_int(buf.numel(), "isend"), mpi_type(buf.dtype()), peer, tag, comm_, r->handle()),
         "MPI_Isend");
  return r;
}

std::unique_ptr<Request> MpiCommunicator::irecv(Tensor& buf, int peer, int tag) {
  check_host(buf, "irecv");
  check_peer(peer, size_, "irecv");
  count("irecv", buf.nbytes());
  auto r = std::make_unique<MpiRequest>();
  mpi_ok(MPI_Irecv(buf.raw(), count_int(buf.numel(), "irecv"), mpi_type(buf.dtype()), peer, tag, comm_, r->handle()),
         "MPI_Irecv");
  return r;
}

std::unique_ptr<Request> MpiCommunicator::iall_reduce(Tensor& buf, ReduceOp op) {
  check_host(buf, "iall_reduce");
  check_reducible(buf, op, "iall_reduce");
  count("iall_reduce", buf.nbytes());
  auto r = std::make_unique<MpiRequest>();
  mpi_ok(MPI_Iallreduce(MPI_IN_PLACE, buf.raw(), count_int(buf.numel(), "iall_reduce"), mpi_type(buf.dtype()),
                        mpi_op(op), comm_, r->handle()),
         "MPI_Iallreduce");
  return r;
}

std::unique_ptr<Request> MpiCommunicator::iall_gather(const Tensor& in, Tensor& out) {
  check_host(in, "iall_gather");
  check_host(out, "iall_gather");
  FIVEFOLD_CHECK(out.numel() == in.numel() * size_ && in.dtype() == out.dtype(), "iall_gather: out ", out.str(),
                 " must hold ", size_, " x in ", in.str());
  count("iall_gather", in.nbytes());
  auto r = std::make_unique<MpiRequest>();
  const int n = count_int(in.numel(), "iall_gather");
  mpi_ok(MPI_Iallgather(in.raw(), n, mpi_type(in.dtype()), out.raw(), n, mpi_type(out.dtype()), comm_, r->handle()),
         "MPI_Iallgather");
  return r;
}

std::unique_ptr<Request> MpiCommunicator::ireduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) {
  check_host(in, "ireduce_scatter");
  check_host(out, "ireduce_scatter");
  FIVEFOLD_CHECK(in.numel() == out.numel() * size_ && in.dtype() == out.dtype(), "ireduce_scatter: in ", in.str(),
                 " must hold ", size_, " x out ", out.str());
  check_reducible(in, op, "ireduce_scatter");
  count("ireduce_scatter", in.nbytes());
  auto r = std::make_unique<MpiRequest>();
  mpi_ok(MPI_Ireduce_scatter_block(in.raw(), out.raw(), count_int(out.numel(), "ireduce_scatter"),
                                   mpi_type(in.dtype()), mpi_op(op), comm_, r->handle()),
         "MPI_Ireduce_scatter_block");
  return r;
}

void MpiCommunicator::barrier() {
  TraceSpan span("barrier", "comm");
  count("barrier", 0);
  mpi_ok(MPI_Barrier(comm_), "MPI_Barrier");
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key, const std::string& name) {
  // A negative color (MPI_UNDEFINED included) would leave this rank without a group.
  FIVEFOLD_CHECK(color >= 0, "split: color ", color, " must be >= 0; every rank must join some group");
  MPI_Comm sub = MPI_COMM_NULL;
  mpi_ok(MPI_Comm_split(comm_, color, key, &sub), "MPI_Comm_split");
  return std::make_unique<MpiCommunicator>(sub, name, true);
}

}  // namespace fivefold
