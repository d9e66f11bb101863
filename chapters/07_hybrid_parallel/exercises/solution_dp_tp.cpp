// SPDX-License-Identifier: MIT
// Exercise 3's check run on the chapter library's split_dp_tp (the solution), so ctest shows
// that the check passes on a correct answer.
#include "chapters/07_hybrid_parallel/exercises/check_dp_tp.hpp"

int main(int argc, char** argv) {
  return fivefold::ch07::check_dp_tp_split(argc, argv, fivefold::ch07::split_dp_tp);
}
