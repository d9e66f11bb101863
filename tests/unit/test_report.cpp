// SPDX-License-Identifier: MIT
// Unit tests of what a run reports: cross-checks (compare/merge), the --json summary keys of
// docs/reference.md ("The summary"), the Chrome trace, and the narration helpers (tables, number
// formatting).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/narrate.hpp"
#include "common/summary.hpp"
#include "common/trace.hpp"

namespace fivefold {
namespace {

using nlohmann::json;

TEST(Compare, ExactAndRelativeErrors) {
  const Tensor ref = Tensor::from_vector(std::vector<float>{3, 4}, {2});  // ||ref|| = 5
  const CheckResult same = compare("same", ref, ref.clone(), 0.0);
  EXPECT_EQ(same.max_abs_err, 0.0);
  EXPECT_EQ(same.max_rel_err, 0.0);
  EXPECT_TRUE(same.passed);

  const Tensor ours = Tensor::from_vector(std::vector<float>{3, 4.5f}, {1, 2});  // same numel
  const CheckResult r = compare("off", ours, ref, 0.05);
  EXPECT_EQ(r.name, "off");
  EXPECT_DOUBLE_EQ(r.max_abs_err, 0.5);
  EXPECT_DOUBLE_EQ(r.max_rel_err, 0.1);
  EXPECT_FALSE(r.passed);
  EXPECT_TRUE(compare("off", ours, ref, 0.1).passed);

  // Zero reference: the error is ||ours||, so only an exact match passes.
  const Tensor zero = Tensor::zeros({2});
  EXPECT_TRUE(compare("z", zero, zero, 0.0).passed);
  EXPECT_DOUBLE_EQ(compare("z", ref, zero, 1.0).max_rel_err, 5.0);

  // int32 tensors compare too.
  const Tensor a = Tensor::from_vector(std::vector<std::int32_t>{1, 2, 2}, {3});
  const Tensor b = Tensor::from_vector(std::vector<std::int32_t>{1, 2, 3}, {3});
  EXPECT_DOUBLE_EQ(compare("i", a, b, 1.0).max_abs_err, 1.0);
}

TEST(Compare, NumelMismatchAndNaNFail) {
  const CheckResult r = compare("shape", Tensor::zeros({3}), Tensor::zeros({4}), 1e9);
  EXPECT_FALSE(r.passed);
  EXPECT_TRUE(std::isinf(r.max_abs_err));
  EXPECT_TRUE(std::isinf(r.max_rel_err));

  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor ref = Tensor::from_vector(std::vector<float>{1, 2}, {2});
  const CheckResult n = compare("nan", Tensor::from_vector(std::vector<float>{1, nan}, {2}), ref, 1e9);
  EXPECT_FALSE(n.passed);
  EXPECT_TRUE(std::isnan(n.max_abs_err));
}

TEST(Compare, MergeTakesWorst) {
  CheckResult acc{"grads", 0.1, 1e-7, 1e-5, true};
  merge(acc, CheckResult{"grads", 0.05, 1e-6, 1e-5, true});
  EXPECT_DOUBLE_EQ(acc.max_abs_err, 0.1);
  EXPECT_DOUBLE_EQ(acc.max_rel_err, 1e-6);
  EXPECT_TRUE(acc.passed);
  merge(acc, CheckResult{"grads", 0.0, 0.0, 1e-5, false});
  EXPECT_FALSE(acc.passed);
}

TEST(Summary, JsonHasContractKeys) {
  Summary s;
  s.chapter = "03_tensor_parallel";
  s.backend = "cpu";
  s.world_size = 4;
  s.config = {{"tp", 4}, {"seed", 1}};
  s.loss = {2.5, 2.25};
  s.checks.push_back({"grads vs serial", 1e-7, 2e-6, 1e-5, true});
  s.comm.push_back({"tp", "all_reduce", 8, 4096, 8, 4096});
  s.param_bytes_per_rank = {100, 100, 100, 100};
  s.peak_bytes_per_rank = {200, 200, 200, 201};
  s.time_s = 1.5;
  EXPECT_TRUE(s.all_passed());

  const json j = s.to_json();
  for (const char* key : {"chapter", "backend", "world_size", "config", "loss", "checks", "comm", "memory", "time_s"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j.size(), 9u);
  EXPECT_EQ(j["chapter"], "03_tensor_parallel");
  EXPECT_EQ(j["world_size"], 4);
  EXPECT_EQ(j["config"]["tp"], 4);
  EXPECT_EQ(j["loss"], json({2.5, 2.25}));
  const json& c = j["checks"].at(0);
  EXPECT_EQ(c.size(), 5u);
  EXPECT_EQ(c["name"], "grads vs serial");
  EXPECT_EQ(c["max_rel_err"], 2e-6);
  EXPECT_EQ(c["tolerance"], 1e-5);
  EXPECT_EQ(c["passed"], true);
  const json& m = j["comm"].at(0);
  EXPECT_EQ(m.size(), 6u);
  for (const char* key : {"group", "op", "calls", "payload_bytes", "predicted_calls", "predicted_payload_bytes"})
    EXPECT_TRUE(m.contains(key)) << key;
  EXPECT_EQ(m["payload_bytes"], 4096);
  EXPECT_EQ(j["memory"]["peak_bytes_per_rank"], json({200, 200, 200, 201}));
  EXPECT_EQ(j["memory"]["param_bytes_per_rank"].size(), 4u);
  EXPECT_EQ(j["time_s"], 1.5);

  s.comm.push_back({"dp", "all_gather", 2, 100, 2, 101});
  EXPECT_FALSE(s.all_passed());
}

TEST(Summary, NonFiniteErrorsAreNullAndWriteCreatesDirs) {
  Summary s;
  s.checks.push_back(compare("shape", Tensor::zeros({3}), Tensor::zeros({4}), 1e-5));
  s.loss = {std::nan("")};
  const json direct = s.to_json();
  EXPECT_TRUE(direct["checks"][0]["max_abs_err"].is_null());
  EXPECT_TRUE(direct["loss"][0].is_null());
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "fivefold_unit_summary";
  std::filesystem::remove_all(dir);
  const std::string path = (dir / "a" / "b.json").string();
  s.write(path);
  std::ifstream in(path);
  const json j = json::parse(in);  // throws if the file is not valid JSON
  EXPECT_TRUE(j["checks"][0]["max_rel_err"].is_null());
  EXPECT_EQ(j["checks"][0]["passed"], false);

  std::ofstream(dir / "file") << "x";
  const std::string bad = (dir / "file" / "s.json").string();
  try {
    s.write(bad);
    ADD_FAILURE() << "writing under a regular file did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}

TEST(Trace, EventsAndChromeFile) {
  Tracer& t = Tracer::instance();
  if (!t.enabled()) {  // nothing is recorded before enable()
    { TraceSpan off("before enable", "compute"); }
    t.add({"manual before enable", "compute", 0.0, 1.0, 0});
    EXPECT_EQ(t.size(), 0u);
  }
  t.enable(3);
  EXPECT_EQ(t.size(), 0u);
  { TraceSpan span("all_reduce", "comm", 1); }
  { TraceSpan span("matmul", "compute"); }
  t.add({"manual", "compute", 10.0, 5.0, 0});
  ASSERT_EQ(t.size(), 3u);

  const json events = json::parse(t.events_json());
  ASSERT_TRUE(events.is_array());
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["name"], "all_reduce");
  EXPECT_EQ(events[0]["cat"], "comm");
  EXPECT_EQ(events[0]["tid"], 1);
  for (const auto& e : events) {
    EXPECT_EQ(e["ph"], "X");
    EXPECT_EQ(e["pid"], 3);
    EXPECT_GE(e["ts"].get<double>(), 0.0);
    EXPECT_GE(e["dur"].get<double>(), 0.0);
  }
  EXPECT_LE(events[0]["ts"].get<double>(), events[1]["ts"].get<double>());
  EXPECT_EQ(events[2]["ts"], 10.0);
  EXPECT_EQ(events[2]["dur"], 5.0);

  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "fivefold_unit_trace";
  std::filesystem::remove_all(dir);
  const std::string path = (dir / "t.json").string();
  write_chrome_trace(path, {"[]", t.events_json()});
  std::ifstream in(path);
  const json doc = json::parse(in);
  EXPECT_EQ(doc["displayTimeUnit"], "ms");
  int names = 0, spans = 0;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "process_name") {
      EXPECT_EQ(e["args"]["name"], "rank " + std::to_string(e["pid"].get<int>()));
      ++names;
    }
    if (e["ph"] == "X") ++spans;
  }
  EXPECT_EQ(names, 2);
  EXPECT_EQ(spans, 3);
  EXPECT_THROW(write_chrome_trace(path, {"not json"}), Error);
}

TEST(Narrate, TableIsAligned) {
  Table t;
  t.title = "bytes moved";
  t.header = {"op", "calls", "payload"};
  t.add({"all_reduce", "8", "4.0 KiB"});
  t.add({"all_gather", "12", "16.0 MiB"});
  EXPECT_THROW(t.add({"too", "short"}), Error);
  const std::string text = t.render();
  std::istringstream is(text);
  std::string title, head, rule, r1, r2;
  std::getline(is, title);
  std::getline(is, head);
  std::getline(is, rule);
  std::getline(is, r1);
  std::getline(is, r2);
  EXPECT_EQ(title, "bytes moved");
  EXPECT_EQ(head, "op          calls   payload");
  EXPECT_EQ(rule, "----------  -----  --------");
  EXPECT_EQ(r1, "all_reduce      8   4.0 KiB");
  EXPECT_EQ(r2, "all_gather     12  16.0 MiB");
  EXPECT_EQ(text.back(), '\n');
}

TEST(Narrate, NarratorPrintsOnRankZeroOnly) {
  Table t;
  t.header = {"a"};
  t.add({"1"});
  testing::internal::CaptureStdout();
  Narrator(0, false).step(2, "ring all-reduce");
  Narrator(0, false).say("hello");
  Narrator(0, true).say("hidden");
  Narrator(0, true).table(t);
  Narrator(1, false).say("other rank");
  Table other;
  other.header = {"not on rank 0"};
  Narrator(1, false).table(other);
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("\n== Step 2: ring all-reduce ==\n"), std::string::npos) << out;
  EXPECT_NE(out.find("hello\n"), std::string::npos);
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_EQ(out.find("other rank"), std::string::npos);
  EXPECT_EQ(out.find("not on rank 0"), std::string::npos);
  EXPECT_NE(out.find("a\n-\n1\n"), std::string::npos) << out;
}

TEST(Narrate, Formatting) {
  EXPECT_EQ(fmt("%.3g", 0.000123456), "0.000123");
  EXPECT_EQ(fmt("%.70f", 1.0), "1." + std::string(70, '0'));  // longer than the stack buffer
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(4096), "4.0 KiB");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(16.0 * 1024 * 1024), "16.0 MiB");
  EXPECT_EQ(human_bytes(3.0 * 1024 * 1024 * 1024), "3.0 GiB");
  EXPECT_EQ(human_bytes(2048.0 * 1024 * 1024 * 1024), "2048.0 GiB");
}

}  // namespace
}  // namespace fivefold
