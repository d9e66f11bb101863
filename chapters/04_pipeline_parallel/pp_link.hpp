// SPDX-License-Identifier: MIT
/// @file pp_link.hpp
/// @brief The point-to-point traffic between pipeline stages: non-blocking sends, blocking
/// receives, every message checked against what the receiver expects, and counted per
/// neighbour pair and direction.
///
/// Why non-blocking sends: in 1F1B a stage sends its activation forward and then waits for a
/// gradient from the same neighbour, who is sending that gradient back at the same moment; two
/// blocking sends of large buffers would wait for each other forever. A send is posted and
/// completes while the stage goes on; wait_all() ends the step.
///
/// Why a header: a stage that sent its messages in another order than its neighbour receives
/// them would make the receiver wait for a message that never comes, or take the wrong one.
/// Each payload is preceded by a small int32 header (kind, microbatch, virtual stage), not
/// counted as traffic; a receiver that reads another header than it expects stops the job with
/// both named, instead of hanging or computing with the wrong tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "backends/communicator.hpp"
#include "backends/ops.hpp"

namespace fivefold::ch04 {

/// What a message carries: 'F' an activation, 'B' its gradient, 'T' generated token ids.
struct Message {
  char kind = 'F';  ///< 'F', 'B', 'T'
  int mb = 0;       ///< microbatch (or request)
  int vstage = 0;   ///< the virtual stage it is FOR (or the generated token's index)
};

/// A direction of traffic: from rank, to rank, kind of message ('F', 'B', 'T').
using Route = std::tuple<int, int, char>;

/// Sends and receives over the pipeline group, counted per (from, to) pair of ranks.
class StageLink {
 public:
  /// Over @p pp (rank r = stage r), tensors on @p ops's device.
  StageLink(Communicator& pp, Ops& ops) : pp_(&pp), ops_(&ops) {}
  /// Posts @p t to rank @p to; the tensor's storage stays alive until the send completes.
  void send(const Tensor& t, int to, const Message& msg);
  /// Receives from rank @p from a tensor of @p shape and @p dtype that must be @p msg; throws
  /// Error naming the expected and the received message otherwise.
  Tensor recv(const Shape& shape, DType dtype, int from, const Message& msg);
  /// Waits for every posted send.
  void wait_all();
  /// Tests the posted sends (and forgets those complete): MPI moves a large posted message only
  /// inside MPI calls, so a stage that only sends for a while (GPipe's last stage in its
  /// backwards) calls this between passes to keep its messages moving.
  void progress();
  /// Calls and bytes this rank SENT, per receiver and kind of message ({from, to, kind} ->
  /// counts: 'F' activations forward, 'B' gradients back, 'T' token ids) since the last reset.
  const std::map<Route, OpCount>& sent() const { return sent_; }
  /// Forgets the per-pair counts.
  void reset() { sent_.clear(); }
  /// The group.
  Communicator& group() { return *pp_; }

 private:
  struct Pending {
    Tensor header, payload;
    std::unique_ptr<Request> h, p;
  };
  Communicator* pp_;
  Ops* ops_;
  std::vector<Pending> pending_;
  std::map<Route, OpCount> sent_;
};

/// "F3 for virtual stage 2".
std::string describe(const Message& m);

}  // namespace fivefold::ch04
