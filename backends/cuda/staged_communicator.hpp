// SPDX-License-Identifier: MIT
/// @file staged_communicator.hpp
/// @brief Communicator that moves CUDA tensors through MPI, staged in host memory.
///
/// For when ranks outnumber GPUs: NCCL refuses two ranks on one GPU, but MPI does not care.
/// A device buffer is copied to a host buffer, the MPI operation runs on it, and results are
/// copied back; host tensors go straight to MPI. Two extra PCIe copies per call is the price,
/// which the trace shows as "stage" spans around the MPI call.
#pragma once

#include <memory>
#include <string>

#include "backends/communicator.hpp"
#include "backends/cpu/mpi_communicator.hpp"

namespace fivefold {

/// MPI transport for CUDA tensors through host staging buffers; counts every call once.
class StagedCommunicator : public Communicator {
 public:
  /// Wraps @p inner (its own counting is switched off: this wrapper counts) under @p name.
  StagedCommunicator(std::unique_ptr<MpiCommunicator> inner, std::string name);
  /// Every rank of the job (a duplicate of MPI_COMM_WORLD), named "world".
  static std::unique_ptr<StagedCommunicator> world();

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::string kind() const override { return "mpi-staged"; }

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
  void barrier() override;
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override;

 private:
  std::unique_ptr<MpiCommunicator> inner_;
};

}  // namespace fivefold
