// SPDX-License-Identifier: MIT
/// @file trace.hpp
/// @brief Chrome trace (Trace Event Format) of compute and communication spans.
///
/// Spans are recorded per process while tracing is enabled; at the end every rank's events
/// are gathered to rank 0, which writes one file with one `pid` per rank. Open it in
/// chrome://tracing or https://ui.perfetto.dev.
#pragma once

#include <string>
#include <vector>

namespace fivefold {

/// One complete event ("ph":"X").
struct TraceEvent {
  std::string name;   ///< e.g. "all_reduce" or "step2: ring all-reduce"
  std::string cat;    ///< "comm" or "compute" (or a chapter's own category)
  double ts_us = 0;   ///< start, microseconds since the tracer was enabled
  double dur_us = 0;  ///< duration in microseconds
  int tid = 0;        ///< thread lane (0 main, 1 communication)
};

/// Process-wide span recorder (disabled by default; recording costs nothing then).
class Tracer {
 public:
  /// The process's tracer.
  static Tracer& instance();
  /// Starts recording; @p pid is the rank written into every event.
  void enable(int pid);
  /// True while recording.
  bool enabled() const { return enabled_; }
  /// Microseconds since enable().
  double now_us() const;
  /// Records a finished span.
  void add(TraceEvent e);
  /// This process's events as a JSON array text (for gathering to rank 0).
  std::string events_json() const;
  /// Number of recorded events.
  std::size_t size() const { return events_.size(); }

 private:
  bool enabled_ = false;
  int pid_ = 0;
  double t0_ = 0;
  std::vector<TraceEvent> events_;
};

/// Records the span from construction to destruction when tracing is enabled.
class TraceSpan {
 public:
  /// Opens a span named @p name in category @p cat on lane @p tid.
  TraceSpan(const char* name, const char* cat, int tid = 0);
  /// Closes the span.
  ~TraceSpan();
  TraceSpan(const TraceSpan&) = delete;
  TraceSpan& operator=(const TraceSpan&) = delete;

 private:
  const char* name_;
  const char* cat_;
  int tid_;
  double start_ = -1;
};

/// Writes a Chrome trace file from every rank's events_json() (index = rank = pid), with
/// process names "rank N". Throws Error naming the path on failure.
void write_chrome_trace(const std::string& path, const std::vector<std::string>& per_rank_events);

}  // namespace fivefold
