// SPDX-License-Identifier: MIT
// Chrome trace (Trace Event Format): every span is a complete event ("ph": "X") with a start
// and a duration in microseconds; each rank is one process (pid = rank), named "rank N" by a
// metadata event, and each lane (tid 0 main, 1 communication) is one thread row.
// Times are from std::chrono::steady_clock, relative to when the tracer was enabled, so ranks
// are aligned only as well as their enable() calls were (chapters enable after a barrier).
#include "common/trace.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/check.hpp"
#include "common/output.hpp"

namespace fivefold {

namespace {

/// Microseconds on the steady clock since an arbitrary fixed point.
double steady_us() {
  using namespace std::chrono;
  return duration<double, std::micro>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Tracer& Tracer::instance() {
  static Tracer tracer;
  return tracer;
}

void Tracer::enable(int pid) {
  pid_ = pid;
  t0_ = steady_us();
  events_.clear();
  enabled_ = true;
}

double Tracer::now_us() const { return steady_us() - t0_; }

void Tracer::add(TraceEvent e) {
  if (enabled_) events_.push_back(std::move(e));
}

std::string Tracer::events_json() const {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& e : events_) {
    arr.push_back({{"name", e.name},
                   {"cat", e.cat},
                   {"ph", "X"},
                   {"ts", e.ts_us},
                   {"dur", e.dur_us},
                   {"pid", pid_},
                   {"tid", e.tid}});
  }
  return arr.dump();
}

TraceSpan::TraceSpan(const char* name, const char* cat, int tid) : name_(name), cat_(cat), tid_(tid) {
  const Tracer& t = Tracer::instance();
  if (t.enabled()) start_ = t.now_us();
}

TraceSpan::~TraceSpan() {
  Tracer& t = Tracer::instance();
  if (start_ < 0 || !t.enabled()) return;
  t.add(TraceEvent{name_, cat_, start_, t.now_us() - start_, tid_});
}

void write_chrome_trace(const std::string& path, const std::vector<std::string>& per_rank_events) {
  using nlohmann::json;
  json events = json::array();
  for (std::size_t rank = 0; rank < per_rank_events.size(); ++rank) {
    json mine;
    try {
      mine = json::parse(per_rank_events[rank]);
    } catch (const json::exception& e) {
      FIVEFOLD_CHECK(false, "writing trace ", path, ": the events of rank ", rank, " are not valid JSON (",
                     e.what(), ")");
    }
    FIVEFOLD_CHECK(mine.is_array(), "writing trace ", path, ": the events of rank ", rank,
                   " are not a JSON array");
    const int pid = static_cast<int>(rank);
    events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", pid}, {"tid", 0},
                      {"args", {{"name", "rank " + std::to_string(rank)}}}});
    events.push_back({{"name", "process_sort_index"}, {"ph", "M"}, {"pid", pid}, {"tid", 0},
                      {"args", {{"sort_index", pid}}}});
    std::set<int> lanes;
    for (auto& e : mine) {
      lanes.insert(e.value("tid", 0));
      events.push_back(std::move(e));
    }
    for (int tid : lanes) {
      const std::string lane = tid == 0 ? "main" : tid == 1 ? "communication" : "lane " + std::to_string(tid);
      events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", pid}, {"tid", tid},
                        {"args", {{"name", lane}}}});
    }
  }
  const json doc = {{"traceEvents", events}, {"displayTimeUnit", "ms"}};

  write_file_atomic(path, doc.dump() + "\n");
}

}  // namespace fivefold
