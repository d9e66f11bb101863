// SPDX-License-Identifier: MIT
// Exact per-rank traffic of the hand-written collectives, derived from which chunks each
// phase sends (see ring.cpp), and the textbook / nccl-tests formulas they are compared with.
#include "chapters/00_collectives/cost_model.hpp"

#include "chapters/00_collectives/ring.hpp"
#include "common/check.hpp"

namespace fivefold {

namespace {
std::int64_t chunk_bytes(std::int64_t count, int n, int i, std::int64_t elem_bytes) {
  return chunk_of(count, n, ring_index(i, n)).size * elem_bytes;
}
}  // namespace

RingTraffic ring_reduce_scatter_traffic(std::int64_t count, int n, int rank, std::int64_t elem_bytes) {
  // Steps s = 0..n-2 send chunks rank-1, rank-2, ..., rank-(n-1): all chunks but chunk rank.
  return {n - 1, count * elem_bytes - chunk_bytes(count, n, rank, elem_bytes)};
}

RingTraffic ring_all_gather_traffic(std::int64_t count, int n, int rank, std::int64_t elem_bytes) {
  // Steps s = 0..n-2 send chunks rank, rank-1, ..., rank-(n-2): all chunks but chunk rank+1.
  return {n - 1, count * elem_bytes - chunk_bytes(count, n, rank + 1, elem_bytes)};
}

RingTraffic ring_all_reduce_traffic(std::int64_t count, int n, int rank, std::int64_t elem_bytes) {
  const RingTraffic a = ring_reduce_scatter_traffic(count, n, rank, elem_bytes);
  const RingTraffic b = ring_all_gather_traffic(count, n, rank, elem_bytes);
  return {a.calls + b.calls, a.bytes + b.bytes};
}

RingTraffic pairwise_all_to_all_traffic(std::int64_t count, int n, int rank, std::int64_t elem_bytes) {
  // Every block leaves the rank except its own (copied locally).
  return {n - 1, count * elem_bytes - chunk_bytes(count, n, rank, elem_bytes)};
}

RingTraffic tree_broadcast_send_traffic(std::int64_t count, int n, int rank, int root, std::int64_t elem_bytes) {
  const int children = tree_broadcast_children(rank, root, n);
  return {children, children * count * elem_bytes};
}

RingTraffic tree_broadcast_recv_traffic(std::int64_t count, int n, int rank, int root, std::int64_t elem_bytes) {
  const int parents = rank == root ? 0 : 1;
  return {parents, parents * count * elem_bytes};
}

double busbw_factor(const std::string& op, int n) {
  if (op == "all_reduce") return 2.0 * (n - 1) / n;
  if (op == "all_gather" || op == "reduce_scatter" || op == "all_to_all") return static_cast<double>(n - 1) / n;
  if (op == "broadcast") return 1.0;
  throw Error("busbw_factor: unknown collective '" + op +
              "'; use all_reduce, all_gather, reduce_scatter, all_to_all or broadcast");
}

double textbook_bytes(const std::string& op, double s_bytes, int n) { return busbw_factor(op, n) * s_bytes; }

double alpha_beta_time(const std::string& op, double s_bytes, int n, double alpha_s, double beta_bytes_per_s) {
  const int steps = op == "all_reduce" ? 2 * (n - 1) : n - 1;
  return steps * alpha_s + textbook_bytes(op, s_bytes, n) / beta_bytes_per_s;
}

}  // namespace fivefold
