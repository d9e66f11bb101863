// SPDX-License-Identifier: MIT
// Hand-written collectives on sendrecv/send/recv (see ring.hpp). The ring routines work in
// place on one buffer: the chunk a rank receives lands either in a scratch chunk (reduce-
// scatter, then Ops::add/maximum reduces it into place) or directly in its final place
// (all-gather), so no step copies a whole buffer.
#include "chapters/00_collectives/ring.hpp"

#include <algorithm>

#include "common/check.hpp"

namespace fivefold {

Chunk chunk_of(std::int64_t count, int n, int i) {
  FIVEFOLD_CHECK(n >= 1 && i >= 0 && i < n, "chunk_of: chunk ", i, " of ", n, " does not exist");
  const std::int64_t base = count / n, extra = count % n;
  // TUTORIAL: the first count%n chunks get one extra element, so chunk sizes differ by <= 1.
  return {i * base + std::min<std::int64_t>(i, extra), base + (i < extra ? 1 : 0)};
}

int ring_index(int i, int n) { return ((i % n) + n) % n; }

Tensor ring_scratch(Ops& ops, std::int64_t count, int n) {
  return ops.empty({chunk_of(count, n, 0).size});  // chunk 0 is a largest chunk
}

int reduce_scatter_send_chunk(int rank, int s, int n) { return ring_index(rank - s - 1, n); }
int reduce_scatter_recv_chunk(int rank, int s, int n) { return ring_index(rank - s - 2, n); }
int all_gather_send_chunk(int rank, int s, int n) { return ring_index(rank - s, n); }
int all_gather_recv_chunk(int rank, int s, int n) { return ring_index(rank - s - 1, n); }

void ring_reduce_scatter_step(Communicator& comm, Ops& ops, Tensor& buf, int s, Tensor& scratch, ReduceOp op) {
  const int n = comm.size(), r = comm.rank();
  const Chunk out = chunk_of(buf.numel(), n, reduce_scatter_send_chunk(r, s, n));
  const Chunk in = chunk_of(buf.numel(), n, reduce_scatter_recv_chunk(r, s, n));
  FIVEFOLD_CHECK(scratch.numel() >= in.size, "ring_reduce_scatter: scratch ", scratch.str(), " is smaller than a ",
                 in.size, "-element chunk; make it with ring_scratch()");
  Tensor send = buf.flat(out.offset, out.size);
  Tensor recv = scratch.flat(0, in.size);
  // TUTORIAL: pass my partial sum of one chunk to the right, take the left's partial sum of the next.
  comm.sendrecv(send, ring_index(r + 1, n), recv, ring_index(r - 1, n));
  Tensor mine = buf.flat(in.offset, in.size);
  // TUTORIAL: reduce in place: my chunk += what the left neighbour has accumulated so far.
  if (op == ReduceOp::sum) {
    ops.add(mine, mine, recv);
  } else {
    ops.maximum(mine, mine, recv);
  }
}

void ring_all_gather_step(Communicator& comm, Tensor& buf, int s) {
  const int n = comm.size(), r = comm.rank();
  const Chunk out = chunk_of(buf.numel(), n, all_gather_send_chunk(r, s, n));
  const Chunk in = chunk_of(buf.numel(), n, all_gather_recv_chunk(r, s, n));
  Tensor send = buf.flat(out.offset, out.size);
  Tensor recv = buf.flat(in.offset, in.size);
  // TUTORIAL: forward the chunk I got last step; the one from the left lands in its final place.
  comm.sendrecv(send, ring_index(r + 1, n), recv, ring_index(r - 1, n));
}

void ring_reduce_scatter(Communicator& comm, Ops& ops, Tensor& buf, ReduceOp op, Tensor* scratch) {
  const int n = comm.size();
  Tensor local;
  if (scratch == nullptr) {
    local = ring_scratch(ops, buf.numel(), n);
    scratch = &local;
  }
  for (int s = 0; s < n - 1; ++s) ring_reduce_scatter_step(comm, ops, buf, s, *scratch, op);
}

void ring_all_gather(Communicator& comm, Tensor& buf) {
  for (int s = 0; s < comm.size() - 1; ++s) ring_all_gather_step(comm, buf, s);
}

void ring_all_reduce(Communicator& comm, Ops& ops, Tensor& buf, ReduceOp op, Tensor* scratch) {
  // TUTORIAL: all-reduce = reduce-scatter (each rank ends with one reduced chunk, rank r owns
  // chunk r) followed by all-gather (every rank collects every reduced chunk).
  ring_reduce_scatter(comm, ops, buf, op, scratch);
  ring_all_gather(comm, buf);
}

int tree_broadcast_children(int rank, int root, int n) {
  const int v = ring_index(rank - root, n);  // distance from the root along the ring
  int children = 0;
  for (int mask = 1; mask < n; mask <<= 1)
    if (v < mask && v + mask < n) ++children;
  return children;
}

void tree_broadcast(Communicator& comm, Tensor& buf, int root) {
  const int n = comm.size(), r = comm.rank();
  FIVEFOLD_CHECK(root >= 0 && root < n, "tree_broadcast: root ", root, " outside 0..", n - 1);
  const int v = ring_index(r - root, n);
  for (int mask = 1; mask < n; mask <<= 1) {
    if (v < mask) {
      // TUTORIAL: ranks that already hold the data double the set: v sends to v + mask.
      if (v + mask < n) comm.send(buf, ring_index(r + mask, n));
    } else if (v < 2 * mask) {
      comm.recv(buf, ring_index(r - mask, n));  // my round: receive from v - mask
    }
  }
}

void pairwise_all_to_allv(Communicator& comm, const Tensor& in, const std::vector<std::int64_t>& send_counts,
                          Tensor& out, const std::vector<std::int64_t>& recv_counts) {
  const int n = comm.size(), r = comm.rank();
  FIVEFOLD_CHECK(static_cast<int>(send_counts.size()) == n && static_cast<int>(recv_counts.size()) == n,
                 "pairwise_all_to_allv: need ", n, " send and recv counts, got ", send_counts.size(), " and ",
                 recv_counts.size());
  std::vector<std::int64_t> send_off(n + 1, 0), recv_off(n + 1, 0);
  for (int i = 0; i < n; ++i) {
    send_off[i + 1] = send_off[i] + send_counts[i];
    recv_off[i + 1] = recv_off[i] + recv_counts[i];
  }
  FIVEFOLD_CHECK(send_off[n] <= in.numel() && recv_off[n] <= out.numel(), "pairwise_all_to_allv: counts (",
                 send_off[n], " sent, ", recv_off[n], " received) exceed in ", in.str(), " or out ", out.str());
  // My own block never leaves the rank.
  Tensor own = out.flat(recv_off[r], recv_counts[r]);
  own.copy_from(in.flat(send_off[r], send_counts[r]));
  for (int s = 1; s < n; ++s) {
    const int dst = ring_index(r + s, n), src = ring_index(r - s, n);
    // TUTORIAL: step s pairs every rank with the ranks s ahead and s behind; each step every rank
    // sends one block and receives one, so no link idles and no rank waits on a busy one.
    Tensor recv = out.flat(recv_off[src], recv_counts[src]);
    comm.sendrecv(in.flat(send_off[dst], send_counts[dst]), dst, recv, src);
  }
}

void pairwise_all_to_all(Communicator& comm, const Tensor& in, Tensor& out) {
  const int n = comm.size();
  FIVEFOLD_CHECK(in.numel() == out.numel() && in.numel() % n == 0, "pairwise_all_to_all: in ", in.str(),
                 " and out ", out.str(), " must have equal sizes divisible by ", n,
                 "; use pairwise_all_to_allv for uneven blocks");
  const std::vector<std::int64_t> counts(n, in.numel() / n);
  pairwise_all_to_allv(comm, in, counts, out, counts);
}

}  // namespace fivefold
