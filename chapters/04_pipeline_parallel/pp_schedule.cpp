// SPDX-License-Identifier: MIT
// The schedules' orders, the stage split, the replay on paper and the closed forms.
#include "chapters/04_pipeline_parallel/pp_schedule.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <sstream>

#include "common/check.hpp"

namespace fivefold::ch04 {

std::string schedule_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::gpipe: return "gpipe";
    case ScheduleKind::one_f_one_b: return "1f1b";
    case ScheduleKind::interleaved: return "interleaved";
    case ScheduleKind::zb_h1: return "zb-h1";
  }
  return "?";
}

ScheduleKind parse_schedule(const std::string& name) {
  for (ScheduleKind k : {ScheduleKind::gpipe, ScheduleKind::one_f_one_b, ScheduleKind::interleaved, ScheduleKind::zb_h1})
    if (schedule_name(k) == name) return k;
  throw UsageError("--schedule " + name + " is not a schedule; pick gpipe, 1f1b, interleaved or zb-h1");
}

std::string check_layout(ScheduleKind kind, int layers, int p, int m, int v, int batch) {
  std::ostringstream e;
  if (p > layers) {
    e << "--pp " << p << " is more than --layers " << layers << ": every stage needs a layer; pass --pp <= " << layers
      << " or more --layers";
  } else if (m < 1 || batch % m != 0) {
    e << "--microbatches " << m << " does not divide --batch " << batch << "; pick a divisor of " << batch;
  } else if (kind != ScheduleKind::interleaved && v != 1) {
    e << "--virtual-stages " << v << " needs --schedule interleaved (" << schedule_name(kind)
      << " runs one chunk per stage); drop it or pass --schedule interleaved";
  } else if (kind == ScheduleKind::interleaved) {
    if (p < 2)
      e << "interleaving needs --pp >= 2 (one stage has no bubble to shrink); pass --pp 2 or more";
    else if (v < 2)
      e << "interleaving needs --virtual-stages >= 2 (v = 1 is plain 1F1B); pass --virtual-stages 2";
    else if (v * p > layers)
      e << "--virtual-stages " << v << " x --pp " << p << " = " << v * p << " chunks but --layers " << layers
        << ": every chunk needs a layer; " << (v > 2 ? "lower --virtual-stages or " : "")
        << "pass --layers " << v * p << " or more";
    else if (layers % (v * p) != 0)
      e << "--layers " << layers << " is not divisible by --virtual-stages " << v << " x --pp " << p << " = " << v * p
        << " (Megatron's rule: equal chunks); pick --layers a multiple of " << v * p;
    else if (m % p != 0)
      e << "interleaved needs --microbatches a multiple of --pp " << p << " (Megatron's rule), got " << m
        << "; pass --microbatches " << p * std::max(1, (m + p - 1) / p);
  }
  return e.str();
}

std::vector<std::pair<int, int>> stage_ranges(int layers, int stages) {
  FIVEFOLD_CHECK(stages >= 1 && stages <= layers, "stage_ranges: ", stages, " stages for ", layers, " layers");
  std::vector<std::pair<int, int>> r;
  const int base = layers / stages, extra = layers % stages;
  int first = 0;
  for (int s = 0; s < stages; ++s) {
    const int n = base + (s < extra ? 1 : 0);  // TUTORIAL: the extra layers go to the first stages
    r.emplace_back(first, first + n);
    first += n;
  }
  return r;
}

std::vector<std::pair<int, int>> rank_chunks(int layers, int p, int v, int r) {
  const auto all = stage_ranges(layers, v * p);
  std::vector<std::pair<int, int>> mine;
  for (int c = 0; c < v; ++c) mine.push_back(all[c * p + r]);  // TUTORIAL: chunks r, r+p, r+2p, ...
  return mine;
}

namespace {

/// 1F1B's order on rank @p r (v = 1); with @p split, each B is followed by a W once more than
/// r W's are pending (ZB-H1), the rest after the last B.
std::vector<Action> one_f_one_b(int p, int m, int r, bool split) {
  std::vector<Action> a;
  const int warmup = std::min(p - r - 1, m);
  std::deque<int> pending;
  auto backward = [&](int mb) {
    a.push_back({'B', mb, r});
    if (!split) return;
    pending.push_back(mb);
    if (static_cast<int>(pending.size()) > r) {  // TUTORIAL: stage r keeps r W's back to fill its cool-down
      a.push_back({'W', pending.front(), r});
      pending.pop_front();
    }
  };
  for (int i = 0; i < warmup; ++i) a.push_back({'F', i, r});  // warm-up
  for (int i = 0; i < m - warmup; ++i) {                      // steady: one forward, one backward
    a.push_back({'F', warmup + i, r});
    backward(i);
  }
  for (int i = m - warmup; i < m; ++i) backward(i);  // cool-down
  for (int mb : pending) a.push_back({'W', mb, r});
  return a;
}

/// Megatron's interleaved order on rank @p r: the k-th forward runs chunk (k/p) mod v of
/// microbatch (k/(p*v))*p + k mod p; backwards walk the chunks in reverse.
std::vector<Action> interleaved(int p, int m, int v, int r) {
  const int total = m * v;
  auto mb_of = [&](int k) { return (k / (p * v)) * p + k % p; };
  auto fwd = [&](int k) { return Action{'F', mb_of(k), ((k / p) % v) * p + r}; };
  auto bwd = [&](int k) { return Action{'B', mb_of(k), (v - 1 - (k / p) % v) * p + r}; };
  const int warmup = std::min((p - r - 1) * 2 + (v - 1) * p, total);
  std::vector<Action> a;
  for (int k = 0; k < warmup; ++k) a.push_back(fwd(k));
  for (int i = 0; i < total - warmup; ++i) {
    a.push_back(fwd(warmup + i));
    a.push_back(bwd(i));
  }
  for (int i = total - warmup; i < total; ++i) a.push_back(bwd(i));
  return a;
}

}  // namespace

Schedule make_schedule(ScheduleKind kind, int p, int m, int v) {
  const int layers_enough = kind == ScheduleKind::interleaved ? v * p : p;  // sizes are checked by the caller
  const std::string bad = check_layout(kind, layers_enough, p, m, v, m);
  FIVEFOLD_USAGE_CHECK(bad.empty(), bad);
  Schedule s;
  s.kind = kind;
  s.p = p;
  s.m = m;
  s.v = v;
  s.split_backward = kind == ScheduleKind::zb_h1;
  for (int r = 0; r < p; ++r) {
    std::vector<Action> a;
    if (kind == ScheduleKind::gpipe) {
      for (int i = 0; i < m; ++i) a.push_back({'F', i, r});  // TUTORIAL: every forward first ...
      for (int i = 0; i < m; ++i) a.push_back({'B', i, r});  // ... then every backward
    } else if (kind == ScheduleKind::interleaved) {
      a = interleaved(p, m, v, r);
    } else {
      a = one_f_one_b(p, m, r, s.split_backward);
    }
    s.ranks.push_back(std::move(a));
  }
  return s;
}

double Replay::idle_share(int r) const {
  double busy = 0.0;
  for (const Timed& t : ranks.at(r)) busy += t.end - t.start;
  return makespan > 0 ? 1.0 - busy / makespan : 0.0;
}

Replay replay(const Schedule& s, const std::function<double(int, const Action&)>& duration) {
  const int V = s.stages();
  // End time of each (kind, microbatch, virtual stage) once placed.
  std::map<std::tuple<char, int, int>, double> done;
  auto waits_for = [&](const Action& a) -> std::tuple<char, int, int> {
    if (a.kind == 'F') return {'F', a.mb, a.vstage - 1};  // vstage 0 reads tokens: no wait
    if (a.kind == 'W') return {'B', a.mb, a.vstage};
    return a.vstage == V - 1 ? std::tuple<char, int, int>{'F', a.mb, a.vstage} : std::tuple{'B', a.mb, a.vstage + 1};
  };
  Replay out;
  out.ranks.resize(s.p);
  std::vector<std::size_t> next(s.p, 0);
  std::vector<double> free_at(s.p, 0.0);
  for (bool progress = true; progress;) {
    progress = false;
    for (int r = 0; r < s.p; ++r) {
      while (next[r] < s.ranks[r].size()) {
        const Action& a = s.ranks[r][next[r]];
        double ready = free_at[r];
        if (!(a.kind == 'F' && a.vstage == 0)) {
          const auto it = done.find(waits_for(a));
          if (it == done.end()) break;  // what it waits for has not run yet
          ready = std::max(ready, it->second);
        }
        const double end = ready + duration(r, a);
        out.ranks[r].push_back({a, ready, end});
        done[{a.kind, a.mb, a.vstage}] = end;
        free_at[r] = end;
        out.makespan = std::max(out.makespan, end);
        ++next[r];
        progress = true;
      }
    }
  }
  std::ostringstream stuck;
  for (int r = 0; r < s.p; ++r)
    if (next[r] < s.ranks[r].size()) {
      const Action& a = s.ranks[r][next[r]];
      stuck << " rank " << r << " at " << a.kind << a.mb << " (virtual stage " << a.vstage << ");";
    }
  FIVEFOLD_CHECK(stuck.str().empty(), "schedule ", schedule_name(s.kind), " would hang: the passes wait on each other in a cycle:",
                 stuck.str(), " fix the order so each pass comes after what it waits for");
  return out;
}

Replay replay_units(const Schedule& s) {
  return replay(s, [&](int, const Action& a) { return a.kind == 'B' && !s.split_backward ? 2.0 : 1.0; });
}

std::vector<std::string> timeline(const Schedule& s) {
  const Replay rp = replay_units(s);
  const int slots = static_cast<int>(rp.makespan + 0.5);
  auto cell = [&](char kind, const Action& a) {
    std::string c = kind + std::to_string(a.mb);
    if (s.v > 1) c += "/" + std::to_string(a.vstage / s.p);
    return c;
  };
  std::size_t width = 1;
  std::vector<std::vector<std::string>> grid(s.p, std::vector<std::string>(slots, "."));
  for (int r = 0; r < s.p; ++r)
    for (const Timed& t : rp.ranks[r]) {
      const int t0 = static_cast<int>(t.start + 0.5);
      grid[r][t0] = cell(t.a.kind, t.a);
      if (t.end - t.start > 1.5) grid[r][t0 + 1] = cell('W', t.a);  // a fused backward: B then W
    }
  for (const auto& row : grid)
    for (const auto& c : row) width = std::max(width, c.size());
  std::vector<std::string> lines;
  for (int r = 0; r < s.p; ++r) {
    std::string line = "rank " + std::to_string(r) + " |";
    for (const auto& c : grid[r]) line += " " + c + std::string(width - c.size(), ' ');
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

double bubble_formula(ScheduleKind kind, int p, int m, int v) {
  const double idle = p - 1;
  switch (kind) {
    case ScheduleKind::interleaved: return idle / (static_cast<double>(v) * m + idle);
    case ScheduleKind::zb_h1: return idle / (3.0 * m + idle);
    default: return idle / (m + idle);
  }
}

int peak_passes_formula(ScheduleKind kind, int p, int m, int v, int r) {
  switch (kind) {
    case ScheduleKind::gpipe: return m;
    case ScheduleKind::one_f_one_b: return std::min(p - r, m);
    case ScheduleKind::zb_h1: return std::min(p, m);
    case ScheduleKind::interleaved: return std::min(2 * (p - r - 1) + (v - 1) * p + 1, v * m);
  }
  return 0;
}

long long messages_formula(int p, int m, int v) { return 2LL * (static_cast<long long>(v) * p - 1) * m; }

}  // namespace fivefold::ch04
