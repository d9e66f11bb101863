// SPDX-License-Identifier: MIT
// The solutions of exercises 1, 2, 4 and 5, run through the same checks: `ch07_ex_solution coords`,
// `groups`, `capacity_prefix` or `wire_bytes`.
#include <cstring>

#include "chapters/07_hybrid_parallel/exercises/check.hpp"
#include "chapters/07_hybrid_parallel/exercises/check_steps.hpp"

using namespace fivefold;

namespace {

AxisArray coords_by_hand(int rank, const AxisArray& sizes, const std::vector<Axis>& order) {
  AxisArray c{};
  for (Axis a : order) {
    const int i = static_cast<int>(a);
    c[i] = rank % sizes[i];  // the lowest digit...
    rank /= sizes[i];        // ...then drop it
  }
  return c;
}

std::vector<int> group_by_hand(int rank, const AxisSet& s, const ProcessGrid& grid) {
  const AxisArray mine = grid.coords(rank);
  std::vector<int> members;
  for (int local = 0; local < grid.size(s); ++local) {
    AxisArray c = mine;
    int rest = local;
    for (Axis a : grid.order()) {
      if (!s.contains(a)) continue;
      c[static_cast<int>(a)] = rest % grid.size(a);
      rest /= grid.size(a);
    }
    members.push_back(ch07::rank_at(c, grid));
  }
  return members;
}

/// Exercise 4: every segment, on any rank, that starts at an earlier position of the same sequence.
std::vector<std::int64_t> before_by_hand(int me, const std::vector<std::vector<ch05::Segment>>& segs,
                                         const std::vector<std::vector<std::int64_t>>& chosen, std::int64_t b,
                                         int experts) {
  const std::int64_t E = experts, G = static_cast<std::int64_t>(segs[me].size());
  std::vector<std::int64_t> before(b * G * E, 0);
  for (std::size_t q = 0; q < segs.size(); ++q) {
    const std::int64_t Gq = static_cast<std::int64_t>(segs[q].size());
    for (std::int64_t s = 0; s < b; ++s)
      for (std::int64_t h = 0; h < Gq; ++h)
        for (std::int64_t e = 0; e < E; ++e) {
          const std::int64_t c = chosen[q][(s * Gq + h) * E + e];
          for (std::int64_t g = 0; g < G; ++g)
            if (segs[q][h].start < segs[me][g].start) before[(s * G + g) * E + e] += c;  // position order
        }
  }
  return before;
}

/// Exercise 5, part 1: the model of step7_wire.cpp.
std::map<int, double> wire_by_hand(const std::vector<int>& members, int rank, const std::string& op, double payload) {
  std::map<int, double> to;
  const int n = static_cast<int>(members.size());
  int i = 0;
  while (members[i] != rank) ++i;
  if (n == 1) return to;
  const int next = members[(i + 1) % n];
  if (op == "all_reduce") to[next] += 2.0 * (n - 1) / n * payload;  // n-1 steps of N/n, twice
  else if (op == "reduce_scatter") to[next] += (n - 1.0) / n * payload;
  else if (op == "all_gather") to[next] += (n - 1.0) * payload;
  else if (op == "all_to_all")
    for (int q : members)
      if (q != rank) to[q] += payload / n;
  return to;
}

/// Exercise 5, part 2.
double across_by_hand(const std::map<int, double>& to, int rank, int gpus_per_node) {
  double across = 0;
  for (const auto& [peer, b] : to)
    if (peer / gpus_per_node != rank / gpus_per_node) across += b;
  return across;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "coords") == 0) return ch07::check_coords(argc - 1, argv + 1, coords_by_hand);
  if (argc >= 2 && std::strcmp(argv[1], "groups") == 0) return ch07::check_group(argc - 1, argv + 1, group_by_hand);
  if (argc >= 2 && std::strcmp(argv[1], "capacity_prefix") == 0)
    return ch07::check_capacity_prefix(argc - 1, argv + 1, before_by_hand);
  if (argc >= 2 && std::strcmp(argv[1], "wire_bytes") == 0)
    return ch07::check_wire_bytes(argc - 1, argv + 1, wire_by_hand, across_by_hand);
  return 2;
}
