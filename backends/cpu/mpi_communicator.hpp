// SPDX-License-Identifier: MIT
/// @file mpi_communicator.hpp
/// @brief Communicator over an MPI communicator (host buffers), the CPU backend's transport.
#pragma once

#include <mpi.h>

#include <memory>
#include <string>

#include "backends/communicator.hpp"

namespace fivefold {

/// MPI implementation of Communicator. Buffers must be host tensors.
class MpiCommunicator : public Communicator {
 public:
  /// Wraps @p comm (freed on destruction when @p owned) and counts under @p name.
  MpiCommunicator(MPI_Comm comm, std::string name, bool owned);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;  // owns (frees) its MPI_Comm
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;
  /// The communicator of every rank (MPI_COMM_WORLD), named "world".
  static std::unique_ptr<MpiCommunicator> world();

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string kind() const override { return "mpi"; }
  /// The underlying MPI communicator.
  MPI_Comm handle() const { return comm_; }

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

 private:
  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace fivefold
