// SPDX-License-Identifier: MIT
// The exercise checks run on the chapter library's routines (the solutions), so ctest can show
// that the checks pass on a correct answer: ch02_ex_solution bucket_reduce | zero1_update.
#include <cstdio>
#include <string>

#include "chapters/02_data_parallel/exercises/check.hpp"

using namespace fivefold;

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "";
  argv[1 < argc ? 1 : 0] = argv[0];  // the checks read the arguments after the name
  if (which == "bucket_reduce") return ch02::check_bucket_reduce(argc - 1, argv + 1, ch02::post_ready_bucket);
  if (which == "zero1_update") return ch02::check_zero1_update(argc - 1, argv + 1, ch02::zero1_update);
  std::fprintf(stderr, "error: usage: ch02_ex_solution bucket_reduce|zero1_update [--hint 1|2] (got '%s')\n",
               which.c_str());
  return 2;
}
