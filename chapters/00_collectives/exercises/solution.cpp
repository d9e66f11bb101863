// SPDX-License-Identifier: MIT
// The exercise checks run on the chapter library's routines (the solutions), so ctest can show
// that the checks pass on a correct answer: ch00_ex_solution reduce_scatter | all_gather.
#include <cstdio>
#include <string>

#include "chapters/00_collectives/exercises/check.hpp"
#include "chapters/00_collectives/ring.hpp"

using namespace fivefold;

namespace {
void solution_reduce_scatter(Communicator& comm, Ops& ops, Tensor& buf, Tensor& scratch) {
  ring_reduce_scatter(comm, ops, buf, ReduceOp::sum, &scratch);
}
void solution_all_gather(Communicator& comm, Tensor& buf) { ring_all_gather(comm, buf); }
}  // namespace

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "";
  argv[1 < argc ? 1 : 0] = argv[0];  // the checks read the arguments after the name
  if (which == "reduce_scatter") return ch00::check_reduce_scatter(argc - 1, argv + 1, solution_reduce_scatter);
  if (which == "all_gather") return ch00::check_all_gather(argc - 1, argv + 1, solution_all_gather);
  std::fprintf(stderr, "error: usage: ch00_ex_solution reduce_scatter|all_gather [--hint 1|2] (got '%s')\n",
               which.c_str());
  return 2;
}
