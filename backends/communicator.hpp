// SPDX-License-Identifier: MIT
/// @file communicator.hpp
/// @brief The Communicator interface: one small set of collectives with MPI and NCCL behind it.
///
/// Contract: every rank of the group calls the same methods in the same order (as in MPI and
/// NCCL). Buffers are Tensors on the backend's device; fp32 tensors may be reduced, any dtype
/// may be moved. Every call is counted per group name (op, calls, payload bytes) so chapters
/// can compare what their code sent with their formulas.
///
/// Payload bytes are the size of the buffer a rank hands to the call:
/// | op             | payload bytes counted per call        |
/// |----------------|---------------------------------------|
/// | all_reduce     | buf (S)                               |
/// | all_gather     | in (S/n, this rank's share)           |
/// | reduce_scatter | in (S, the full buffer)               |
/// | all_to_all(v)  | in (what this rank sends, incl. self) |
/// | broadcast      | buf (S), on every rank                |
/// | send / recv    | the buffer sent / received            |
/// | sendrecv       | the buffer sent                       |
/// | barrier        | 0                                     |
/// | isend / irecv  | the buffer sent / received, counted under "isend" / "irecv" |
/// | iall_reduce    | buf (S), counted under "iall_reduce" (not "all_reduce") |
/// | iall_gather    | in (S/n), counted under "iall_gather" |
/// | ireduce_scatter| in (S), counted under "ireduce_scatter" |
/// | split          | not counted (the new group counts its own calls under its name) |
///
/// Calls are counted when they are made (a non-blocking call when it is posted, not when it
/// completes); all_to_allv counts the elements named by send_counts, not in.numel().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/tensor.hpp"

namespace fivefold {

/// Reduction applied by all_reduce / reduce_scatter.
enum class ReduceOp { sum, max };

/// Calls and payload bytes of one operation in one group.
struct OpCount {
  std::int64_t calls = 0;          ///< number of calls
  std::int64_t payload_bytes = 0;  ///< summed payload bytes (see the table in communicator.hpp)
};

/// Counters of one group: operation name ("all_reduce", "send", ...) -> counts.
using CommCounts = std::map<std::string, OpCount>;

/// Handle of a non-blocking operation; wait() completes it (the destructor waits too).
class Request {
 public:
  virtual ~Request() = default;
  /// Blocks until the operation has completed and its buffers may be reused.
  virtual void wait() = 0;
  /// True when complete (non-blocking test).
  virtual bool test() = 0;
};

/// A request that has already completed (what blocking fallbacks of non-blocking calls return).
class CompletedRequest : public Request {
 public:
  void wait() override {}
  bool test() override { return true; }
};

/// A group of ranks that communicate (MPI communicator or NCCL communicator).
class Communicator {
 public:
  virtual ~Communicator() = default;

  /// This rank's index in the group, 0..size()-1.
  virtual int rank() const = 0;
  /// Number of ranks in the group.
  virtual int size() const = 0;
  /// The group's name, used as the key of its counters ("world", "tp", "dp", ...).
  const std::string& name() const { return name_; }
  /// Name of the implementation ("mpi", "nccl", "mpi-staged").
  virtual std::string kind() const = 0;

  /// In place: buf = op over ranks of buf. fp32 only.
  virtual void all_reduce(Tensor& buf, ReduceOp op = ReduceOp::sum) = 0;
  /// out = concatenation of every rank's in, in rank order; out.numel() == size()*in.numel().
  virtual void all_gather(const Tensor& in, Tensor& out) = 0;
  /// out = block rank() of (op over ranks of in); in.numel() == size()*out.numel(). fp32 only.
  virtual void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op = ReduceOp::sum) = 0;
  /// Block j of in goes to rank j; block i of out comes from rank i. Equal blocks.
  virtual void all_to_all(const Tensor& in, Tensor& out) = 0;
  /// Variable blocks: send_counts[j] elements (consecutive in in) to rank j, recv_counts[i]
  /// elements from rank i (consecutive in out).
  virtual void all_to_allv(const Tensor& in, const std::vector<std::int64_t>& send_counts,
                           Tensor& out, const std::vector<std::int64_t>& recv_counts) = 0;
  /// buf on every rank = buf on @p root.
  virtual void broadcast(Tensor& buf, int root) = 0;
  /// Blocking point-to-point send to @p peer.
  virtual void send(const Tensor& buf, int peer, int tag = 0) = 0;
  /// Blocking point-to-point receive from @p peer (buf must have the sender's size).
  virtual void recv(Tensor& buf, int peer, int tag = 0) = 0;
  /// Sends @p send_buf to @p dst and receives @p recv_buf from @p src at the same time
  /// (deadlock-free; the ring's building block).
  virtual void sendrecv(const Tensor& send_buf, int dst, Tensor& recv_buf, int src, int tag = 0) = 0;
  /// Non-blocking send; keep the buffer alive until the request completes.
  virtual std::unique_ptr<Request> isend(const Tensor& buf, int peer, int tag = 0) = 0;
  /// Non-blocking receive; keep the buffer alive until the request completes.
  virtual std::unique_ptr<Request> irecv(Tensor& buf, int peer, int tag = 0) = 0;
  /// Non-blocking all_reduce (MPI_Iallreduce / NCCL on a communication stream).
  virtual std::unique_ptr<Request> iall_reduce(Tensor& buf, ReduceOp op = ReduceOp::sum) = 0;
  /// Non-blocking all_gather (MPI_Iallgather); keep both buffers alive and untouched until the
  /// request completes. This default runs the blocking all_gather and returns a completed
  /// request (same result and counts, no overlap) for implementations without their own.
  virtual std::unique_ptr<Request> iall_gather(const Tensor& in, Tensor& out);
  /// Non-blocking reduce_scatter (MPI_Ireduce_scatter_block); same rules and default as
  /// iall_gather.
  virtual std::unique_ptr<Request> ireduce_scatter(const Tensor& in, Tensor& out, ReduceOp op = ReduceOp::sum);
  /// Blocks until every rank of the group has arrived.
  virtual void barrier() = 0;
  /// Splits the group: ranks with the same @p color form a new group ordered by @p key.
  /// Collective over this group. The new group's counters are kept under @p name.
  virtual std::unique_ptr<Communicator> split(int color, int key, const std::string& name) = 0;

  /// This group's counters.
  const CommCounts& counts() const { return counts_; }
  /// Forgets this group's counters.
  void reset_counts() { counts_.clear(); }
  /// Turns counting on or off (bookkeeping traffic such as gathering a trace is not counted).
  void set_counting(bool on) { counting_ = on; }
  /// True while calls are counted.
  bool counting() const { return counting_; }

 protected:
  /// @param name group name used for counting.
  explicit Communicator(std::string name) : name_(std::move(name)) {}
  /// Adds one call of @p op with @p bytes payload to the counters.
  void count(const char* op, std::size_t bytes) {
    if (!counting_) return;
    OpCount& c = counts_[op];
    c.calls += 1;
    c.payload_bytes += static_cast<std::int64_t>(bytes);
  }

 private:
  std::string name_;
  CommCounts counts_;
  bool counting_ = true;
};

/// Turns counting off on a communicator for its lifetime and restores the previous state when
/// it ends, also when a call in between throws. For bookkeeping traffic (gathers for a check or
/// a dump, barriers before timing) that must not show up in the counters:
///   { Uncounted quiet(comm); comm.all_gather(shard, full); }
class Uncounted {
 public:
  /// Stops counting on @p comm.
  explicit Uncounted(Communicator& comm) : comm_(comm), was_(comm.counting()) { comm_.set_counting(false); }
  ~Uncounted() { comm_.set_counting(was_); }
  Uncounted(const Uncounted&) = delete;
  Uncounted& operator=(const Uncounted&) = delete;

 private:
  Communicator& comm_;
  bool was_;
};

inline std::unique_ptr<Request> Communicator::iall_gather(const Tensor& in, Tensor& out) {
  const bool was = counting_;
  counting_ = false;  // counted once, under the non-blocking name
  try {
    all_gather(in, out);
  } catch (...) {
    counting_ = was;
    throw;
  }
  counting_ = was;
  count("iall_gather", in.nbytes());
  return std::make_unique<CompletedRequest>();
}

inline std::unique_ptr<Request> Communicator::ireduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) {
  const bool was = counting_;
  counting_ = false;
  try {
    reduce_scatter(in, out, op);
  } catch (...) {
    counting_ = was;
    throw;
  }
  counting_ = was;
  count("ireduce_scatter", in.nbytes());
  return std::make_unique<CompletedRequest>();
}

}  // namespace fivefold
