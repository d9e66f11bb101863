// SPDX-License-Identifier: MIT
// ch07_hybrid_parallel as a program (this test starts no MPI itself; it launches the chapter):
// --print-groups output parsed with nlohmann::json and compared with the brute force, run
// directly and under mpiexec (one JSON object: only rank 0 prints); impossible layouts exit 2
// with one error line; full chapter runs under mpiexec pass their checks (--json read back).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "brute_force.hpp"

namespace fivefold::grid_test {
namespace {

struct Output {
  int status = -1;  ///< exit status (or -1 when killed)
  std::string out;  ///< stdout
  std::string err;  ///< stderr
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Runs `prefix EXE args` in a shell with a 120 s limit; returns status and output.
Output run(const std::string& args, const std::string& prefix = "") {
  const std::string base = ::testing::TempDir() + "/ch07_" + std::to_string(getpid());  // unique per run
  const std::string out = base + "_out.txt", err = base + "_err.txt";
  const std::string cmd =
      "timeout 120 " + prefix + " " + CH07_EXE + " " + args + " >" + out + " 2>" + err;
  const int raw = std::system(cmd.c_str());
  Output r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return r;
}

std::string mpiexec(int np) { return std::string(MPIEXEC) + " -n " + std::to_string(np); }

std::vector<std::string> nonempty_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

/// Parses the output and compares every one of the 31 keys (in order) with the brute force.
void expect_printed_groups(const std::string& args, const Sizes& sizes, const std::string& order) {
  SCOPED_TRACE(args);
  const Output r = run(args + " --print-groups");
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(r.out);
  const std::vector<unsigned> masks = all_masks();
  ASSERT_EQ(j.size(), masks.size());
  std::size_t i = 0;
  for (const auto& item : j.items()) {
    ASSERT_EQ(item.key(), set_name(masks[i]));
    EXPECT_EQ(item.value().get<Groups>(), ordered_groups(sizes, order_of(order), masks[i])) << item.key();
    ++i;
  }
}

TEST(PrintGroups, MatchesBruteForce) {
  expect_printed_groups("--world 16 --tp 2 --pp 4", {2, 1, 1, 2, 4}, "tp-sp-ep-dp-pp");
  expect_printed_groups("--world 16 --tp 2 --pp 4 --order tp-sp-ep-pp-dp", {2, 1, 1, 2, 4}, "tp-sp-ep-pp-dp");
  expect_printed_groups("--world 24 --tp 2 --cp 3 --pp 2 --order pp-cp-tp-ep-dp", {2, 3, 1, 2, 2}, "pp-sp-tp-ep-dp");
  expect_printed_groups("--world 12 --ep 2 --dp 3 --pp 2 --order dp-ep-pp-tp-sp", {1, 1, 2, 3, 2}, "dp-ep-pp-tp-sp");
  expect_printed_groups("--world 8 --sp 2 --ep 2 --dp 2", {1, 2, 2, 2, 1}, "tp-sp-ep-dp-pp");
  expect_printed_groups("--world 1", {1, 1, 1, 1, 1}, "tp-sp-ep-dp-pp");
}

TEST(PrintGroups, SixteenGpuExampleLiterally) {
  const Output r = run("--world 16 --tp 2 --pp 4 --dp 2 --print-groups");
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("tp"), nlohmann::json::parse("[[0,1],[2,3],[4,5],[6,7],[8,9],[10,11],[12,13],[14,15]]"));
  EXPECT_EQ(j.at("pp"), nlohmann::json::parse("[[0,4,8,12],[1,5,9,13],[2,6,10,14],[3,7,11,15]]"));
  EXPECT_EQ(j.at("dp"), nlohmann::json::parse("[[0,2],[1,3],[4,6],[5,7],[8,10],[9,11],[12,14],[13,15]]"));
  EXPECT_EQ(j.at("tp-pp"), nlohmann::json::parse("[[0,1,4,5,8,9,12,13],[2,3,6,7,10,11,14,15]]"));
  EXPECT_EQ(j.at("sp"), ordered_groups({2, 1, 1, 2, 4}, order_of("tp-sp-ep-dp-pp"), 2u));  // singletons
}

TEST(PrintGroups, UnderMpiexecOnlyRankZeroPrints) {
  const Output direct = run("--world 16 --tp 2 --pp 4 --print-groups");
  const Output under = run("--world 16 --tp 2 --pp 4 --print-groups", mpiexec(3));
  ASSERT_EQ(under.status, 0) << under.err;
  EXPECT_EQ(under.out, direct.out);
  // Without --world the grid takes the job's size: 4 ranks, dp fills.
  const Output four = run("--print-groups", mpiexec(4));
  ASSERT_EQ(four.status, 0) << four.err;
  EXPECT_EQ(nlohmann::json::parse(four.out).at("dp"), nlohmann::json::parse("[[0,1,2,3]]"));
}

TEST(PrintGroups, ImpossibleLayoutsExitTwoWithOneLine) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--world 8 --tp 2 --dp 2", "world has 8"},
      {"--world 16 --tp 3", "does not divide"},
      {"--world 8 --order tp-sp-xx-dp-pp", "unknown axis 'xx'"},
      {"--world 8 --order tp-tp-ep-dp-pp", "tp appears twice"},
      {"--world 8 --order tp-dp-pp", "missing"},
      {"--world 8 --tp 0", "tp size 0"},
      {"--world 8 --pp 0 --dp 8", "pp size 0"},
      {"--world 4 --sp 2 --cp 2", "--sp"},
      {"--world 0", "--world"},
  };
  for (const auto& [args, word] : bad) {
    for (const std::string extra : {" --print-groups", " --quiet"}) {  // without MPI; the harness (singleton MPI)
      SCOPED_TRACE(args + extra);
      const Output r = run(args + extra);
      EXPECT_EQ(r.status, 2);
      const std::vector<std::string> lines = nonempty_lines(r.out + r.err);
      ASSERT_EQ(lines.size(), 1u) << r.out << r.err;
      EXPECT_EQ(lines[0].rfind("error: ", 0), 0u) << lines[0];
      EXPECT_NE(lines[0].find(word), std::string::npos) << lines[0];
    }
  }
  // Under mpiexec: non-zero, exactly one line from us (mpiexec may add its own banner).
  for (const std::string extra : {" --print-groups", ""}) {
    const Output r = run("--tp 3" + extra, mpiexec(2));
    EXPECT_NE(r.status, 0);
    int errors = 0;
    for (const std::string& l : nonempty_lines(r.out + r.err)) errors += l.rfind("error", 0) == 0 ? 1 : 0;
    EXPECT_EQ(errors, 1) << r.out << r.err;
  }
}

/// Runs the whole chapter under mpiexec with --json and returns the summary.
nlohmann::json chapter_summary(int np, const std::string& args) {
  const std::string json = ::testing::TempDir() + "/ch07_" + std::to_string(getpid()) + "_summary.json";
  std::remove(json.c_str());
  const Output r = run("--quiet --json " + json + " " + args, mpiexec(np));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const std::string text = slurp(json);
  std::remove(json.c_str());
  return nlohmann::json::parse(text);
}

std::vector<std::string> check_names(const nlohmann::json& s) {
  std::vector<std::string> names;
  for (const auto& c : s.at("checks")) {
    EXPECT_TRUE(c.at("passed").get<bool>()) << c.dump();
    names.push_back(c.at("name").get<std::string>());
  }
  for (const auto& e : s.at("comm")) EXPECT_EQ(e.at("calls"), e.at("predicted_calls")) << e.dump();
  return names;
}

TEST(Chapter07, RunsUnderMpiexecAndChecksEveryCommunicator) {
  const nlohmann::json four = chapter_summary(4, "");  // the defaults: dp fills the world
  EXPECT_EQ(four.at("chapter"), "07_hybrid_parallel");
  EXPECT_EQ(four.at("world_size"), 4);
  EXPECT_EQ(four.at("config").at("dp"), 4);
  EXPECT_EQ(four.at("config").at("tp"), 1);
  std::vector<std::string> names = check_names(four);
  EXPECT_NE(std::find(names.begin(), names.end(), "communicator dp: members = the printed group"), names.end());

  const nlohmann::json eight = chapter_summary(8, "--tp 2 --pp 2 --order tp-sp-ep-pp-dp");
  names = check_names(eight);
  for (const std::string set : {"tp", "dp", "pp", "tp-dp", "tp-pp", "dp-pp", "tp-dp-pp"})
    EXPECT_NE(std::find(names.begin(), names.end(), "communicator " + set + ": members = the printed group"),
              names.end())
        << set;
  // Step 1's 7 communicators, then steps 4 and 7 train this grid (3D): tp, pp and dp each against
  // its formula, in each.
  EXPECT_EQ(eight.at("comm").size(), 13u);

  // A grid on paper (--world differs from the job): no communicators, still exit 0.
  const nlohmann::json paper = chapter_summary(2, "--world 16 --tp 2 --pp 4 --gpus-per-node 4");
  EXPECT_EQ(paper.at("config").at("world"), 16);
  EXPECT_EQ(paper.at("comm").size(), 0u);
}

}  // namespace
}  // namespace fivefold::grid_test
