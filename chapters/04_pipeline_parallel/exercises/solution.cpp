// SPDX-License-Identifier: MIT
// The exercise checks run on solutions, so ctest can show that the checks pass on a correct
// answer: ch04_ex_solution one_f_one_b (the chapter library's 1F1B order, from make_schedule) |
// bubble_from_table (exercise 2 written out). Both take --hint 1 / --hint 2 after the name.
#include <cstdio>
#include <sstream>
#include <string>

#include "chapters/04_pipeline_parallel/exercises/check.hpp"

using namespace fivefold;

namespace {

std::vector<ch04::Action> solution_one_f_one_b(int p, int m, int r) {
  return ch04::make_schedule(ch04::ScheduleKind::one_f_one_b, p, m).ranks[r];
}

std::vector<double> solution_idle_shares(const std::vector<std::string>& timeline_lines) {
  std::vector<double> shares;
  for (const std::string& line : timeline_lines) {
    std::istringstream row(line.substr(line.find('|') + 1));
    int cells = 0, idle = 0;
    for (std::string cell; row >> cell; ++cells) idle += cell == "." ? 1 : 0;
    shares.push_back(static_cast<double>(idle) / cells);
  }
  return shares;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "";
  argv[1 < argc ? 1 : 0] = argv[0];  // the checks read the arguments after the name
  if (which == "one_f_one_b") return ch04::check_one_f_one_b(argc - 1, argv + 1, solution_one_f_one_b);
  if (which == "bubble_from_table") return ch04::check_bubble_from_table(argc - 1, argv + 1, solution_idle_shares);
  std::fprintf(stderr, "error: usage: ch04_ex_solution one_f_one_b|bubble_from_table [--hint 1|2] (got '%s')\n",
               which.c_str());
  return 2;
}
