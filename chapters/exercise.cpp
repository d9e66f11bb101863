// SPDX-License-Identifier: MIT
// The graded hints and the verdict of the chapter exercises.
#include "chapters/exercise.hpp"

#include <cstdio>
#include <set>

#include "backends/backend.hpp"
#include "backends/runtime.hpp"
#include "common/check.hpp"
#include "common/narrate.hpp"

namespace fivefold {

namespace {

const char* const kHintLine = "run again with --hint 1 (the idea and the API), then --hint 2 (the rule)";

/// 0 without a hint flag, else the level of `--hint 1|2`; any other argument is a usage error.
int hint_level(int argc, char** argv) {
  int level = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    FIVEFOLD_USAGE_CHECK(a == "--hint", "unexpected argument '", a,
                         "'; run with no argument for the check, or --hint 1 / --hint 2");
    const std::string n = i + 1 < argc ? argv[++i] : "";
    FIVEFOLD_USAGE_CHECK(n == "1" || n == "2", "--hint takes 1 (the idea and the API) or 2 (the rule), got '", n, "'");
    level = std::stoi(n);
  }
  return level;
}

}  // namespace

int run_exercise(int argc, char** argv, const char* hint1, const char* hint2,
                 const std::function<int(Communicator&, Ops&)>& check) {
  return run_mpi_main(argc, argv, [&](int ac, char** av) {
    const int level = hint_level(ac, av);
    if (level > 0) {
      if (MpiSession::world_rank() == 0) std::printf("hint %d: %s\n", level, level == 1 ? hint1 : hint2);
      return 0;
    }
    Backend b = make_backend("cpu");
    return check(*b.world, *b.ops);
  });
}

int verdict(Communicator& world, const std::string& what, const std::string& problem) {
  const std::vector<std::string> all = all_gather_strings(world, problem);
  const bool ok = all_ranks_true(world, problem.empty());
  if (world.rank() == 0) {
    std::printf("exercise %s at n = %d: %s\n", what.c_str(), world.size(), ok ? "PASSED" : "FAILED");
    std::set<std::string> seen;
    for (const std::string& s : all)
      if (!s.empty() && seen.insert(s).second) std::printf("  %s\n", s.c_str());
    if (!ok) std::printf("  hint: %s\n", kHintLine);
    std::fflush(stdout);
  }
  return ok ? 0 : 1;
}

}  // namespace fivefold
