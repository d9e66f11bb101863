// SPDX-License-Identifier: MIT
// Exercise 5: from payload to wire to nodes (chapter 07, step 7).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch07_ex5_wire_bytes
//   build/cpu/bin/ch07_ex5_wire_bytes                       (--hint 1, then --hint 2)
// Goal: the traffic tables count the PAYLOAD, what a rank hands to a collective (chapter 00: an
// all-reduce, a reduce-scatter or an all-to-all its whole buffer N, an all-gather its share s).
// Where a group sits on the nodes decides which bytes cross the network, and that depends on
// what actually leaves each rank, for whom. Write (1) the bytes a rank puts on the wire to each
// peer in one call of its group, the way a ring all-reduce, reduce-scatter and all-gather and a
// direct all-to-all run; (2) how many of those bytes leave its node, a node holding
// gpus_per_node consecutive ranks (node = rank / G, as in step 2).
// Invariant: (1) equals what the rank sends, step by step, when the check runs each collective on
// data over every group of several grids and orders (an all-reduce does not send N to every
// peer); (2) counts each peer's bytes once, when the peer is on another node. The check names the
// first call whose bytes differ, per peer, expected vs got. The chapter's own version is wire()
// in ../step7_wire.cpp: read it after you are done.
#include <map>
#include <string>
#include <vector>

#include "chapters/07_hybrid_parallel/exercises/check_steps.hpp"

using namespace fivefold;

/// Peer (world rank) -> bytes that rank sends it in one call of op over members (group order).
std::map<int, double> wire_by_hand(const std::vector<int>& members, int rank, const std::string& op, double payload) {
  std::map<int, double> to;
  const int n = static_cast<int>(members.size());
  int i = 0;
  while (members[i] != rank) ++i;  // my place in the group
  const int next = members[(i + 1) % n];  // my ring successor
  if (op == "all_reduce") {
    // EXERCISE: an all-reduce of payload bytes, as a ring runs it (a reduce-scatter, then an all-gather).
  } else if (op == "reduce_scatter") {
    // EXERCISE: a ring reduce-scatter of payload bytes.
  } else if (op == "all_gather") {
    // EXERCISE: a ring all-gather, payload being this rank's share.
  } else if (op == "all_to_all") {
    // EXERCISE: an all-to-all of payload bytes in equal blocks, one per member.
  }
  (void)next;
  (void)payload;
  return to;
}

/// The bytes of to (from rank) that leave rank's node.
double across_by_hand(const std::map<int, double>& to, int rank, int gpus_per_node) {
  double across = 0;
  // EXERCISE: sum the bytes to the peers on another node.
  (void)to;
  (void)rank;
  (void)gpus_per_node;
  return across;
}

int main(int argc, char** argv) { return ch07::check_wire_bytes(argc, argv, wire_by_hand, across_by_hand); }
