// SPDX-License-Identifier: MIT
// The exercise checks run on solutions, so ctest can show that the checks pass on a correct
// answer: ch06_ex_solution dispatch_permutation (exercise 1 written out) | count_exchange (the
// chapter library's exchange_counts). Both take --hint 1 / --hint 2 after the name.
#include <cstdio>
#include <string>

#include "chapters/06_expert_parallel/ep_moe.hpp"
#include "chapters/06_expert_parallel/exercises/check.hpp"

using namespace fivefold;

namespace {

void solution_dispatch(const std::vector<std::int32_t>& choice, const std::vector<std::uint8_t>& kept,
                       std::int64_t tokens, int topk, int experts, int ep, std::vector<std::int32_t>& rows,
                       std::vector<std::int64_t>& rows_to) {
  rows.clear();
  rows_to.assign(ep, 0);
  for (int e = 0; e < experts; ++e)
    for (std::int64_t i = 0; i < tokens; ++i)
      for (int j = 0; j < topk; ++j)
        if (choice[i * topk + j] == e && kept[i * topk + j]) {
          rows.push_back(static_cast<std::int32_t>(i));
          ++rows_to[e / (experts / ep)];
        }
}

std::vector<std::int64_t> solution_counts(Communicator& ep, Ops& ops, const std::vector<std::int64_t>& per_expert) {
  return ch06::exchange_counts(ep, ops, per_expert);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "";
  argv[1 < argc ? 1 : 0] = argv[0];  // the checks read the arguments after the name
  if (which == "dispatch_permutation") return ch06::check_dispatch(argc - 1, argv + 1, solution_dispatch);
  if (which == "count_exchange") return ch06::check_count_exchange(argc - 1, argv + 1, solution_counts);
  std::fprintf(stderr, "error: usage: ch06_ex_solution dispatch_permutation|count_exchange [--hint 1|2] (got '%s')\n",
               which.c_str());
  return 2;
}
