// SPDX-License-Identifier: MIT
// The exercise checks run on the chapter library's routines (the solutions), so ctest can show
// that the checks pass on a correct answer: ch01_ex_solution rmsnorm_backward | kv_cache.
#include <cstdio>
#include <string>

#include "chapters/01_reference_model/exercises/check.hpp"
#include "chapters/01_reference_model/rmsnorm_by_hand.hpp"

using namespace fivefold;

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "";
  argv[1 < argc ? 1 : 0] = argv[0];  // the checks read the arguments after the name
  if (which == "rmsnorm_backward")
    return ch01::check_rmsnorm_backward(argc - 1, argv + 1, ch01::rmsnorm_backward_by_hand);
  if (which == "kv_cache") return ch01::check_kv_cache(argc - 1, argv + 1, ch01::cache_attend);
  std::fprintf(stderr, "error: usage: ch01_ex_solution rmsnorm_backward|kv_cache (got '%s')\n", which.c_str());
  return 2;
}
