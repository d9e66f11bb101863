// SPDX-License-Identifier: MIT
/// @file cost_model.hpp
/// @brief What the hand-written collectives of ring.hpp send, exactly per rank, next to the
/// textbook formulas, the α-β time model, and the nccl-tests bandwidth definitions.
///
/// With S = count * element bytes and n ranks, the textbook says a ring all-reduce sends
/// 2(n-1)/n * S per rank and all-gather / reduce-scatter / all-to-all (n-1)/n * S. Those are
/// exact when n divides count. With uneven chunks (ring.hpp) the exact count depends on the
/// rank: a rank never sends one chunk in each phase, and which chunk that is differs by rank.
#pragma once

#include <cstdint>
#include <string>

namespace fivefold {

/// Exact payload bytes and sendrecv (or send) calls of one rank in one hand-written collective.
struct RingTraffic {
  std::int64_t calls = 0;  ///< calls of the point-to-point op
  std::int64_t bytes = 0;  ///< payload bytes summed over those calls
};

/// ring_reduce_scatter: n-1 sendrecv; sends every chunk but its own: S - chunk(rank).
RingTraffic ring_reduce_scatter_traffic(std::int64_t count, int n, int rank, std::int64_t elem_bytes = 4);
/// ring_all_gather: n-1 sendrecv; sends every chunk but its right neighbour's: S - chunk(rank+1).
RingTraffic ring_all_gather_traffic(std::int64_t count, int n, int rank, std::int64_t elem_bytes = 4);
/// ring_all_reduce: 2(n-1) sendrecv; 2S - chunk(rank) - chunk(rank+1).
RingTraffic ring_all_reduce_traffic(std::int64_t count, int n, int rank, std::int64_t elem_bytes = 4);
/// pairwise_all_to_allv with chunk_of blocks (block j of rank r has chunk_of(count, n, j)
/// elements): n-1 sendrecv; every block but its own: S - chunk(rank).
RingTraffic pairwise_all_to_all_traffic(std::int64_t count, int n, int rank, std::int64_t elem_bytes = 4);
/// tree_broadcast sends: one call of S bytes per child of @p rank.
RingTraffic tree_broadcast_send_traffic(std::int64_t count, int n, int rank, int root, std::int64_t elem_bytes = 4);
/// tree_broadcast receives: one call of S bytes on every rank but the root.
RingTraffic tree_broadcast_recv_traffic(std::int64_t count, int n, int rank, int root, std::int64_t elem_bytes = 4);

/// The textbook bytes sent per rank: factor * S with factor 2(n-1)/n for "all_reduce" and
/// (n-1)/n for "all_gather", "reduce_scatter", "all_to_all" (a real number: it rounds).
double textbook_bytes(const std::string& op, double s_bytes, int n);
/// nccl-tests' bus-bandwidth factor: busbw = algbw * factor (same factors as textbook_bytes/S).
double busbw_factor(const std::string& op, int n);
/// α-β time of the ring: steps * alpha + bytes / beta, with 2(n-1) steps for all_reduce and
/// n-1 for the others; @p alpha_s latency per message, @p beta_bytes_per_s link bandwidth.
double alpha_beta_time(const std::string& op, double s_bytes, int n, double alpha_s, double beta_bytes_per_s);

}  // namespace fivefold
