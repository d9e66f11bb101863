// SPDX-License-Identifier: MIT
// The exercise checks run on solutions, so ctest can show that the checks pass on a correct
// answer: ch05_ex_solution lse_merge (exercise 1 written out) | zigzag_map (the chapter library's
// local_positions). Both take --hint 1 / --hint 2 after the name.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "chapters/05_sequence_parallel/exercises/check.hpp"
#include "chapters/05_sequence_parallel/sp_layout.hpp"

using namespace fivefold;

namespace {

void solution_lse_merge(std::vector<double>& out, std::vector<double>& lse, const std::vector<double>& out_b,
                        const std::vector<double>& lse_b, int d) {
  for (std::size_t i = 0; i < lse.size(); ++i) {
    const double m = std::max(lse[i], lse_b[i]);
    if (m == -std::numeric_limits<double>::infinity()) continue;  // both sides saw no key
    const double l = m + std::log(std::exp(lse[i] - m) + std::exp(lse_b[i] - m));
    const double wa = std::exp(lse[i] - l), wb = std::exp(lse_b[i] - l);
    for (int e = 0; e < d; ++e) out[i * d + e] = out[i * d + e] * wa + out_b[i * d + e] * wb;
    lse[i] = l;
  }
}

std::vector<std::int64_t> solution_zigzag(std::int64_t T, int sp, int r) {
  const std::vector<std::int32_t> p = ch05::local_positions(ch05::SpMode::zigzag, T, sp, r);
  return {p.begin(), p.end()};
}

}  // namespace

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "";
  argv[1 < argc ? 1 : 0] = argv[0];  // the checks read the arguments after the name
  if (which == "lse_merge") return ch05::check_lse_merge(argc - 1, argv + 1, solution_lse_merge);
  if (which == "zigzag_map") return ch05::check_zigzag_map(argc - 1, argv + 1, solution_zigzag);
  std::fprintf(stderr, "error: usage: ch05_ex_solution lse_merge|zigzag_map [--hint 1|2] (got '%s')\n", which.c_str());
  return 2;
}
