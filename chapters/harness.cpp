// SPDX-License-Identifier: MIT
// The chapter harness (see harness.hpp): command line, backend, steps, and the end of a run —
// checks merged over ranks, counted vs predicted communication, the closing table, --json,
// --trace and the exit status. Bookkeeping traffic (gathers of text, barriers) is uncounted, so
// it never shows up in what a chapter compares with its formulas.
#include "chapters/harness.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>

#include "backends/runtime.hpp"
#include "common/check.hpp"
#include "common/output.hpp"
#include "common/trace.hpp"

namespace fivefold {

namespace {

/// A barrier that is not counted (aligns the ranks before tracing and timing).
void uncounted_barrier(Communicator& comm) {
  Uncounted quiet(comm);
  comm.barrier();
}

/// A JSON number, or NaN for null (the summary writes NaN/inf as null).
double as_number(const nlohmann::json& j) {
  return j.is_number() ? j.get<double>() : std::numeric_limits<double>::quiet_NaN();
}

CheckResult check_from_json(const nlohmann::json& j) {
  CheckResult c;
  c.name = j.at("name").get<std::string>();
  c.max_abs_err = as_number(j.at("max_abs_err"));
  c.max_rel_err = as_number(j.at("max_rel_err"));
  c.tolerance = as_number(j.at("tolerance"));
  c.passed = j.at("passed").get<bool>();
  return c;
}

CommEntry comm_from_json(const nlohmann::json& j) {
  CommEntry e;
  e.group = j.at("group").get<std::string>();
  e.op = j.at("op").get<std::string>();
  e.calls = j.at("calls").get<std::int64_t>();
  e.payload_bytes = j.at("payload_bytes").get<std::int64_t>();
  e.predicted_calls = j.at("predicted_calls").get<std::int64_t>();
  e.predicted_payload_bytes = j.at("predicted_payload_bytes").get<std::int64_t>();
  return e;
}

/// The run's results merged over ranks: each check is the worst over ranks (max errors, AND of
/// passed); each comm entry is rank 0's, or the first rank whose counts missed the formula.
struct Merged {
  Summary summary;              // checks and comm merged; the rest as on this rank
  std::vector<int> comm_rank;   // per comm entry: -1 when every rank matched, else the rank shown
};

Merged merge_over_ranks(Communicator& world, const Summary& local) {
  Summary mine;
  mine.checks = local.checks;
  mine.comm = local.comm;
  mine.time_s = local.time_s;
  const std::vector<std::string> all = all_gather_strings(world, mine.to_json().dump());
  Merged m;
  m.summary = local;
  m.summary.checks.clear();
  m.summary.comm.clear();
  for (std::size_t r = 0; r < all.size(); ++r) {
    const nlohmann::json j = nlohmann::json::parse(all[r]);
    std::vector<CheckResult> checks;
    std::vector<CommEntry> comm;
    for (const auto& c : j.at("checks")) checks.push_back(check_from_json(c));
    for (const auto& e : j.at("comm")) comm.push_back(comm_from_json(e));
    if (r == 0) {
      m.summary.checks = checks;
      m.summary.comm = comm;
      m.comm_rank.assign(comm.size(), -1);
      for (std::size_t i = 0; i < comm.size(); ++i)
        if (!comm[i].matches()) m.comm_rank[i] = 0;
    }
    m.summary.time_s = std::max(m.summary.time_s, as_number(j.at("time_s")));
    // Ranks must run the same checks in the same order; anything else is itself a failure.
    const bool same = checks.size() == m.summary.checks.size() && comm.size() == m.summary.comm.size();
    if (!same) {
      CheckResult bad;
      bad.name = "rank " + std::to_string(r) + " ran a different list of checks or comm entries";
      bad.max_abs_err = bad.max_rel_err = std::numeric_limits<double>::infinity();
      m.summary.checks.push_back(bad);
      continue;
    }
    for (std::size_t i = 0; i < checks.size(); ++i) {
      if (checks[i].name != m.summary.checks[i].name) m.summary.checks[i].passed = false;
      merge(m.summary.checks[i], checks[i]);
    }
    for (std::size_t i = 0; i < comm.size(); ++i) {
      if (!comm[i].matches() && m.comm_rank[i] < 0) {
        m.summary.comm[i] = comm[i];
        m.comm_rank[i] = static_cast<int>(r);
      }
    }
  }
  return m;
}

/// The closing tables (rank 0).
void print_closing(const Narrator& narrator, const Merged& m, int world_size) {
  Table checks{"Checks (worst over " + std::to_string(world_size) + " rank(s))",
               {"check", "max abs err", "max rel err", "tolerance", "passed"}, {}};
  for (const auto& c : m.summary.checks)
    checks.add({c.name, fmt("%.3g", c.max_abs_err), fmt("%.3g", c.max_rel_err), fmt("%.3g", c.tolerance),
                c.passed ? "yes" : "NO"});
  if (!checks.rows.empty()) narrator.table(checks);
  Table comm{"Communication, counted vs predicted (rank 0, or the first rank that missed)",
             {"group", "op", "calls", "predicted", "payload bytes", "predicted bytes", "rank", "match"},
             {}};
  for (std::size_t i = 0; i < m.summary.comm.size(); ++i) {
    const CommEntry& e = m.summary.comm[i];
    comm.add({e.group, e.op, std::to_string(e.calls), std::to_string(e.predicted_calls),
              std::to_string(e.payload_bytes), std::to_string(e.predicted_payload_bytes),
              m.comm_rank[i] < 0 ? "all" : std::to_string(m.comm_rank[i]), e.matches() ? "yes" : "NO"});
  }
  if (!comm.rows.empty()) narrator.table(comm);
}

/// Writes the summary (docs/reference.md, "The summary"); an entry that missed its formula on rank
/// r > 0 gets "rank": r.
void write_json(const std::string& path, const Merged& m) {
  nlohmann::json j = m.summary.to_json();
  for (std::size_t i = 0; i < m.comm_rank.size(); ++i)
    if (m.comm_rank[i] >= 0) j["comm"][i]["rank"] = m.comm_rank[i];
  write_json_file(path, j);  // atomic; an error names the path
}

/// The output paths of the run (--json, --trace, --dump) checked on rank 0 before any work, the
/// verdict shared with every rank (uncounted): a path that cannot be written stops every rank
/// with one line, instead of a run whose results are lost at the end.
void check_outputs(Communicator& world, const CommonOptions& opts) {
  std::string bad;
  if (world.rank() == 0) {
    if (!opts.json.empty()) bad = check_writable("--json", opts.json, false);
    if (bad.empty() && !opts.trace.empty()) bad = check_writable("--trace", opts.trace, false);
    if (bad.empty() && !opts.dump.empty()) bad = check_writable("--dump", opts.dump, true);
  }
  bad = all_gather_strings(world, bad).front();
  FIVEFOLD_USAGE_CHECK(bad.empty(), bad);
}

/// The chapter's predicted memory against what each machine has (or --max-memory), before any
/// allocation: the ranks sharing a host name are counted together; any machine that would run
/// out stops every rank with one line (the verdict is shared, uncounted).
void check_memory(Communicator& world, const CommonOptions& opts, const ChapterSpec& spec) {
  if (!spec.memory) return;
  const MemoryNeed need = spec.memory(world.size());
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const std::vector<std::string> hosts = all_gather_strings(world, host);
  const int here = static_cast<int>(std::count(hosts.begin(), hosts.end(), std::string(host)));
  const bool given = !opts.max_memory.empty();
  const double limit = given ? parse_bytes("--max-memory", opts.max_memory) : available_memory_bytes();
  std::string bad;
  if (limit > 0 && need.bytes_per_rank * here > limit)
    bad = "predicted " + human_bytes(need.bytes_per_rank) + " per rank x " + std::to_string(here) + " rank(s) on " +
          host + " = " + human_bytes(need.bytes_per_rank * here) + ", more than the " + human_bytes(limit) + " " +
          (given ? "--max-memory allows" : "it has available") + "; lower " + need.lower +
          (given ? "" : ", or pass --max-memory to override the limit");
  for (const std::string& b : all_gather_strings(world, bad)) FIVEFOLD_USAGE_CHECK(b.empty(), b);
}

int run_body(int argc, char** argv, ChapterSpec& spec) {
  const int rank = MpiSession::world_rank();
  const int size = MpiSession::world_size();
  FIVEFOLD_CHECK(!spec.steps.empty(), spec.program, " declares no steps");

  // 1. The command line, validated identically on every rank before any communication.
  CommonOptions opts;
  Cli cli(spec.program, spec.description);
  cli.add_common(opts);
  if (spec.add_options) spec.add_options(cli.app());
  if (auto status = cli.parse(argc, argv, rank == 0)) return *status;
  Narrator narrator(rank, opts.quiet);
  if (opts.list_steps) {
    Table t{spec.program + " steps (run one with --step K)", {"step", "title", "new concept"}, {}};
    for (const auto& s : spec.steps) t.add({std::to_string(s.number), s.title, s.idea});
    narrator.table(t);
    return 0;
  }
  const int first = spec.steps.front().number, last = spec.steps.back().number;
  const bool known = std::any_of(spec.steps.begin(), spec.steps.end(),
                                 [&](const ChapterStep& s) { return s.number == opts.step; });
  FIVEFOLD_USAGE_CHECK(opts.step == 0 || known, "--step ", opts.step, ": ", spec.program, " has steps ", first, "..",
                       last, " (0 runs them all); see --list-steps");
  FIVEFOLD_USAGE_CHECK(spec.has_dump || opts.dump.empty(), "--dump ", opts.dump, ": ", spec.program,
                       " has no model to dump; drop --dump (use --json for the run summary)");
  if (spec.validate) spec.validate(opts, size);
  if (!opts.max_memory.empty()) parse_bytes("--max-memory", opts.max_memory);  // a bad size is refused here

  // 2. Backend, output paths, summary, trace.
  Backend backend = make_backend(opts.backend);
  check_outputs(*backend.world, opts);
  check_memory(*backend.world, opts, spec);
  Summary summary;
  summary.chapter = spec.chapter;
  summary.backend = backend.name;
  summary.world_size = size;
  summary.config = spec.config ? spec.config() : nlohmann::json::object();
  summary.config["backend"] = opts.backend;
  summary.config["step"] = opts.step;
  narrator.say(spec.program + " — " + backend.description);
  if (!opts.trace.empty()) {
    uncounted_barrier(*backend.world);
    Tracer::instance().enable(rank);
  }

  // 3. The steps.
  Context ctx(backend, narrator, opts, summary);
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& s : spec.steps) {
    if (opts.step != 0 && s.number != opts.step) continue;
    narrator.step(s.number, s.title);
    const std::string span_name = "step " + std::to_string(s.number) + ": " + s.title;
    TraceSpan span(span_name.c_str(), "step");
    s.run(ctx);
  }
  backend.ops->synchronize();
  summary.time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!opts.dump.empty() && rank == 0) mark_dump_complete(opts.dump);  // every array is written

  // 4. The end: merged results, tables, files, exit status.
  const Merged merged = merge_over_ranks(*backend.world, summary);
  print_closing(narrator, merged, size);
  if (!opts.json.empty() && rank == 0) write_json(opts.json, merged);
  if (!opts.trace.empty()) {
    const std::vector<std::string> events = all_gather_strings(*backend.world, Tracer::instance().events_json());
    if (rank == 0) write_chrome_trace(opts.trace, events);
  }
  const bool ok = all_ranks_true(*backend.world, merged.summary.all_passed() && summary.all_passed());
  if (rank == 0) {
    // A step that only measures (no check, no count) says so rather than claim checks it did not run.
    const bool none = merged.summary.checks.empty() && merged.summary.comm.empty();
    std::cout << "\n" << spec.program << ": "
              << (!ok    ? "FAILED: a check or a comm count missed on some rank (see the tables above)"
                  : none ? "no check or comm count in the steps that ran (they measure only)"
                         : "every check passed and every comm count matched its formula, on every rank")
              << "\n" << std::flush;
  }
  return ok ? 0 : 1;
}

}  // namespace

void Context::check(const CheckResult& result) {
  CheckResult r = result;
  // Test hook (tests/fault/fail_check.sh): FIVEFOLD_FAIL_CHECK_ON_RANK=k makes every check of
  // rank k fail, to show that one rank's failure ends every rank with a non-zero status.
  static const char* fail_rank = std::getenv("FIVEFOLD_FAIL_CHECK_ON_RANK");
  if (fail_rank && std::atoi(fail_rank) == rank()) {
    if (r.passed) std::fprintf(stderr, "rank %d: check '%s' failed on purpose (FIVEFOLD_FAIL_CHECK_ON_RANK)\n", rank(), r.name.c_str());
    r.passed = false;
  }
  summary.checks.push_back(r);
  narrator.say("  check " + r.name + ": rel err " + fmt("%.3g", r.max_rel_err) + " (tolerance " +
               fmt("%.3g", r.tolerance) + ") -> " + (r.passed ? "passed" : "FAILED") + " on rank 0");
}

void Context::comm(const CommEntry& e) { summary.comm.push_back(e); }

CommEntry Context::entry(const std::string& group, const std::string& op, const CommCounts& counted,
                         std::int64_t predicted_calls, std::int64_t predicted_payload_bytes) {
  CommEntry e;
  e.group = group;
  e.op = op;
  const auto it = counted.find(op);
  if (it != counted.end()) {
    e.calls = it->second.calls;
    e.payload_bytes = it->second.payload_bytes;
  }
  e.predicted_calls = predicted_calls;
  e.predicted_payload_bytes = predicted_payload_bytes;
  return e;
}

std::vector<std::string> Context::gather(const std::string& line) { return all_gather_strings(world, line); }

void Context::say_ranks(const std::string& line) {
  if (options.quiet) return;  // the same on every rank, so skipping the gather is safe
  const std::vector<std::string> lines = gather(line);
  for (std::size_t r = 0; r < lines.size(); ++r) narrator.say("  rank " + std::to_string(r) + ": " + lines[r]);
}

void Context::show(const Table& t) const {
  if (!options.quiet) narrator.table(t);
}

double Context::max_over_ranks(double v) {
  Tensor t = ops.upload(Tensor::from_vector(std::vector<float>{static_cast<float>(v)}, {1}));
  {
    Uncounted quiet(world);
    world.all_reduce(t, ReduceOp::max);
  }
  return t.to_vector()[0];
}

void Context::check_losses(const std::string& title, const std::string& label, const std::vector<double>& ours,
                           const std::vector<double>& serial, double tolerance, const std::string& check_name) {
  Table t{title, {"step", label, "serial", "|diff|"}, {}};
  for (std::size_t k = 0; k < ours.size() && k < serial.size(); ++k)
    t.add({std::to_string(k), fmt("%.6f", ours[k]), fmt("%.6f", serial[k]), fmt("%.2g", std::abs(ours[k] - serial[k]))});
  show(t);
  summary.loss.assign(ours.begin(), ours.end());
  check(compare_values(check_name, ours, serial, tolerance));  // in double: the error measured
}

int run_chapter(int argc, char** argv, ChapterSpec& spec) {
  return run_mpi_main(argc, argv, [&spec](int ac, char** av) { return run_body(ac, av, spec); });
}

}  // namespace fivefold
