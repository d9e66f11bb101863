// SPDX-License-Identifier: MIT
/// @file ring.hpp
/// @brief Collectives written by hand on point-to-point messages: the ring all-reduce
/// (= ring reduce-scatter + ring all-gather), a binomial-tree broadcast and a pairwise
/// all-to-all. Chapter 00's library, reused by later chapters and bench/bench_collectives.
///
/// Everything here uses only Communicator::sendrecv/send/recv and Ops::add/maximum, so it runs
/// unchanged on every backend. It works for any world size n (1 included) and any buffer length
/// (0 included, not divisible by n included).
///
/// Chunks: a buffer of `count` elements is cut into n contiguous chunks; chunk i has
/// `count/n + (i < count%n ? 1 : 0)` elements (the first count%n chunks are one longer) and
/// starts at `i*(count/n) + min(i, count%n)`. The library's reduce_scatter/all_gather need equal
/// blocks; these routines do not.
///
/// What it leaves out: pipelining a chunk in segments, bidirectional rings, trees for small
/// messages (see the chapter README, "Going further").
#pragma once

#include <cstdint>
#include <vector>

#include "backends/communicator.hpp"
#include "backends/ops.hpp"

namespace fivefold {

/// A contiguous piece [offset, offset+size) of a buffer, in elements.
struct Chunk {
  std::int64_t offset = 0;  ///< first element
  std::int64_t size = 0;    ///< number of elements
};

/// Chunk @p i of @p count elements cut into @p n chunks (the first count%n are one longer).
Chunk chunk_of(std::int64_t count, int n, int i);
/// @p i modulo @p n in 0..n-1, also for negative @p i (ring arithmetic).
int ring_index(int i, int n);
/// A scratch tensor big enough for the ring reduce-scatter of @p count elements over @p n
/// ranks (one chunk), on @p ops' device. Pass it to the ring routines to reuse it across calls.
Tensor ring_scratch(Ops& ops, std::int64_t count, int n);

/// The chunk rank @p rank sends at reduce-scatter step @p s: (rank - s - 1) mod n.
int reduce_scatter_send_chunk(int rank, int s, int n);
/// The chunk rank @p rank receives (and reduces into) at reduce-scatter step @p s: (rank - s - 2) mod n.
int reduce_scatter_recv_chunk(int rank, int s, int n);
/// The chunk rank @p rank sends at all-gather step @p s: (rank - s) mod n.
int all_gather_send_chunk(int rank, int s, int n);
/// The chunk rank @p rank receives at all-gather step @p s: (rank - s - 1) mod n.
int all_gather_recv_chunk(int rank, int s, int n);

/// Step @p s (0..n-2) of the ring reduce-scatter, in place on @p buf: send one chunk to the
/// right neighbour, receive one from the left into @p scratch and reduce it into @p buf.
/// @p scratch holds at least one chunk (see ring_scratch).
void ring_reduce_scatter_step(Communicator& comm, Ops& ops, Tensor& buf, int s, Tensor& scratch,
                              ReduceOp op = ReduceOp::sum);
/// Step @p s (0..n-2) of the ring all-gather, in place on @p buf: send one chunk to the right
/// neighbour, receive one from the left straight into its place in @p buf.
void ring_all_gather_step(Communicator& comm, Tensor& buf, int s);

/// Ring reduce-scatter in place: afterwards chunk rank() of @p buf holds the reduction over
/// ranks of that chunk (the other chunks hold partial results). n-1 sendrecv calls.
/// @p scratch: optional, see ring_scratch (allocated per call when null).
void ring_reduce_scatter(Communicator& comm, Ops& ops, Tensor& buf, ReduceOp op = ReduceOp::sum,
                         Tensor* scratch = nullptr);
/// Ring all-gather in place: on entry chunk rank() of @p buf holds this rank's piece; afterwards
/// every chunk holds its owner's piece. n-1 sendrecv calls.
void ring_all_gather(Communicator& comm, Tensor& buf);
/// Ring all-reduce in place = ring_reduce_scatter + ring_all_gather. 2(n-1) sendrecv calls.
void ring_all_reduce(Communicator& comm, Ops& ops, Tensor& buf, ReduceOp op = ReduceOp::sum,
                     Tensor* scratch = nullptr);

/// Binomial-tree broadcast of @p buf from @p root on send/recv: in round k (mask = 2^k) every
/// rank whose distance v from the root is below mask sends to distance v+mask. ceil(log2 n)
/// rounds; each rank receives once (except the root) and sends to its children.
void tree_broadcast(Communicator& comm, Tensor& buf, int root);
/// Number of children (sends) of @p rank in tree_broadcast from @p root over @p n ranks.
int tree_broadcast_children(int rank, int root, int n);

/// Pairwise all-to-all with variable blocks (the semantics of Communicator::all_to_allv):
/// in step s = 1..n-1 rank r sends its block for rank r+s and receives the block of rank r-s
/// (one sendrecv each); its own block is copied locally. Blocks are consecutive in @p in and
/// @p out; the block sizes of sender and receiver must agree.
void pairwise_all_to_allv(Communicator& comm, const Tensor& in, const std::vector<std::int64_t>& send_counts,
                          Tensor& out, const std::vector<std::int64_t>& recv_counts);
/// Pairwise all-to-all with equal blocks (the semantics of Communicator::all_to_all).
void pairwise_all_to_all(Communicator& comm, const Tensor& in, Tensor& out);

}  // namespace fivefold
