// SPDX-License-Identifier: MIT
// The checks of exercises 4 and 5 (check_steps.hpp). Neither calls the chapter's own code for
// the answer: exercise 4's expected counts come from every position's random choices, exercise
// 5's from collectives run step by step on data (rings and an all-to-all), counting what each
// rank sends to whom and checking that the data ends up reduced or gathered.
#include "chapters/07_hybrid_parallel/exercises/check_steps.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>

#include "chapters/exercise.hpp"
#include "common/process_grid.hpp"

namespace fivefold::ch07 {

namespace {

// ---- exercise 4: the capacity prefix ----------------------------------------------------------

const char* const kHintPrefix1 =
    "the idea and the API\n"
    "  Capacity is first come first served by POSITION in the sequence, not by rank: an expert's\n"
    "  first free place goes to the earliest position that chose it, whichever rank holds it.\n"
    "  Segments never overlap, so a segment of any rank (this one included) lies wholly before or\n"
    "  wholly after each of my segments. Which of the counts you were given belong to positions\n"
    "  before my segment's first one? Under ring, rank order is position order; under zigzag it is\n"
    "  not (rank 0 also holds the last chunk), and the check tries a made-up layout too.\n"
    "  API: ch05::Segment {start, len} and ch05::local_segments (chapters/05_sequence_parallel/\n"
    "  sp_layout.hpp); chosen[q][(s * G_q + h) * E + e] is rank q's segment h of sequence s;\n"
    "  the result becomes nn::SequenceShare::before (nn/moe.hpp).";
const char* const kHintPrefix2 =
    "the rule, on one case\n"
    "  zigzag, sp 2, T 16: rank 0 holds positions 0..3 and 12..15, rank 1 holds 4..7 and 8..11.\n"
    "  Rank 0's first segment starts the sequence: it starts from nothing. Its second segment starts\n"
    "  after three segments, its own first and both of rank 1's: per expert, the sum of those three\n"
    "  counts of the SAME sequence. Rank 1's first segment (4..7) starts after rank 0's first only.";

struct PrefixLayout {
  std::string name;
  std::int64_t T = 0;
  std::vector<std::vector<ch05::Segment>> segs;
};

std::vector<PrefixLayout> prefix_layouts() {
  std::vector<PrefixLayout> out;
  for (int sp : {2, 3, 4})
    for (ch05::SpMode m : {ch05::SpMode::ring, ch05::SpMode::zigzag}) {
      PrefixLayout l{ch05::sp_mode_name(m) + ", sp " + std::to_string(sp), 2 * sp * 3, {}};
      for (int r = 0; r < sp; ++r) l.segs.push_back(ch05::local_segments(m, l.T, sp, r));
      out.push_back(l);
    }
  // Made up: 9 chunks of 1 to 3 positions dealt to 3 ranks, each rank's own order shuffled.
  PrefixLayout l{"a made-up layout (3 segments of 1-3 positions per rank, local order not position order), sp 3", 0, {}};
  std::vector<ch05::Segment> chunks;
  for (int i = 0; i < 9; ++i) {
    chunks.push_back({l.T, 1 + (i * 5) % 3});
    l.T += chunks.back().len;
  }
  const int deal[3][3] = {{7, 0, 4}, {2, 8, 5}, {3, 6, 1}};
  for (const auto& r : deal) l.segs.push_back({chunks[r[0]], chunks[r[1]], chunks[r[2]]});
  out.push_back(l);
  PrefixLayout big{"zigzag, sp 8", 32, {}};
  for (int r = 0; r < 8; ++r) big.segs.push_back(ch05::local_segments(ch05::SpMode::zigzag, big.T, 8, r));
  out.push_back(big);
  return out;
}

std::string show(const std::vector<std::int64_t>& v, std::size_t from, std::size_t n) {
  std::string s = "[";
  for (std::size_t i = 0; i < n; ++i) s += (i ? " " : "") + std::to_string(v[from + i]);
  return s + "]";
}

// ---- exercise 5: the wire model ---------------------------------------------------------------

const char* const kHintWire1 =
    "the idea and the API\n"
    "  The payload is what a rank hands to a collective, not what leaves it. Run each algorithm in\n"
    "  your head, step by step, and count what this rank sends and to whom: a ring reduce-scatter\n"
    "  passes one n-th of the buffer to the successor at each of its steps; a ring all-gather\n"
    "  passes the shares around the same ring; an all-to-all hands each other member its block\n"
    "  directly; an all-reduce is a reduce-scatter followed by an all-gather (chapter 00,\n"
    "  ring.cpp). Then a node holds gpus_per_node consecutive ranks.\n"
    "  API: std::map<int, double> (<map>): to[peer] += bytes; the successor of members[i] is\n"
    "  members[(i + 1) % n].";
const char* const kHintWire2 =
    "the rule, on one case\n"
    "  A group of n = 4, an all-reduce of N = 28672 B: the ring runs 3 reduce-scatter steps and 3\n"
    "  all-gather steps, each passing N/4 = 7168 B to the successor: 6 x 7168 = 43008 B, all to the\n"
    "  next member, none to the other two. A reduce-scatter alone is the first 3 of those steps; an\n"
    "  all-gather of a 7168 B share the last 3; an all-to-all of N hands N/4 to each other member.\n"
    "  A byte crosses nodes when its receiver's node (rank / gpus_per_node) is not the sender's.";

const std::vector<std::string> kOps = {"all_reduce", "reduce_scatter", "all_gather", "all_to_all"};
const char* const kAlgo[] = {"ring all-reduce", "ring reduce-scatter", "ring all-gather", "all-to-all"};

int mod(int a, int n) { return ((a % n) + n) % n; }

/// Runs @p op over @p n ranks on data, m elements (4 bytes each) per chunk, share or block;
/// sent[i][j] = bytes rank i sent to rank j (group-local). Returns "" when every rank ends with
/// the collective's result (else what went wrong: a bug of the check, not of the exercise).
std::string simulate(const std::string& op, int n, int m, std::vector<std::map<int, double>>& sent) {
  sent.assign(n, {});
  const double chunk_bytes = 4.0 * m;
  auto value = [](int r, int i) { return 1000.0 * r + i; };
  std::vector<std::vector<double>> buf(n, std::vector<double>(static_cast<std::size_t>(n) * m, 0.0));
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < n * m; ++i)
      if (op != "all_gather" || i / m == r) buf[r][i] = value(r, i);
  // One ring step: rank r sends chunk which(r) to its successor, which adds (or copies) it.
  auto ring_step = [&](const std::function<int(int)>& which, bool add) {
    std::vector<std::vector<double>> msg(n);
    for (int r = 0; r < n; ++r) {
      const int c = which(r);
      msg[r].assign(buf[r].begin() + c * m, buf[r].begin() + (c + 1) * m);
      sent[r][mod(r + 1, n)] += chunk_bytes;
    }
    for (int r = 0; r < n; ++r) {
      const int from = mod(r - 1, n), c = which(from);
      for (int j = 0; j < m; ++j) buf[r][c * m + j] = add ? buf[r][c * m + j] + msg[from][j] : msg[from][j];
    }
  };
  auto sum = [&](int i) {
    double s = 0;
    for (int q = 0; q < n; ++q) s += value(q, i);
    return s;
  };
  if (op == "all_reduce") {
    for (int s = 0; s < n - 1; ++s) ring_step([&](int r) { return mod(r - s, n); }, true);       // reduce-scatter
    for (int s = 0; s < n - 1; ++s) ring_step([&](int r) { return mod(r + 1 - s, n); }, false);  // all-gather
    for (int r = 0; r < n; ++r)
      for (int i = 0; i < n * m; ++i)
        if (buf[r][i] != sum(i)) return "the simulated ring all-reduce is wrong";
  } else if (op == "reduce_scatter") {
    for (int s = 0; s < n - 1; ++s) ring_step([&](int r) { return mod(r - s - 1, n); }, true);
    for (int r = 0; r < n; ++r)
      for (int i = r * m; i < (r + 1) * m; ++i)
        if (buf[r][i] != sum(i)) return "the simulated ring reduce-scatter is wrong";
  } else if (op == "all_gather") {
    for (int s = 0; s < n - 1; ++s) ring_step([&](int r) { return mod(r - s, n); }, false);
    for (int r = 0; r < n; ++r)
      for (int i = 0; i < n * m; ++i)
        if (buf[r][i] != value(i / m, i)) return "the simulated ring all-gather is wrong";
  } else {  // all_to_all: block j of rank r goes to rank j, into its block r
    std::vector<std::vector<double>> out(n, std::vector<double>(static_cast<std::size_t>(n) * m));
    for (int r = 0; r < n; ++r)
      for (int j = 0; j < n; ++j) {
        for (int e = 0; e < m; ++e) out[j][r * m + e] = buf[r][j * m + e];
        if (j != r) sent[r][j] += chunk_bytes;  // its own block is a local copy
      }
    for (int j = 0; j < n; ++j)
      for (int r = 0; r < n; ++r)
        for (int e = 0; e < m; ++e)
          if (out[j][r * m + e] != value(r, j * m + e)) return "the simulated all-to-all is wrong";
  }
  return "";
}

std::string bytes(double b) {
  char s[64];
  if (std::fabs(b - std::round(b)) < 1e-6) std::snprintf(s, sizeof s, "%.0f B", b);
  else std::snprintf(s, sizeof s, "%.6g B", b);
  return s;
}

std::string show(const std::map<int, double>& to) {
  std::string s = "{";
  double total = 0;
  bool first = true;
  for (const auto& [peer, b] : to) {
    s += (first ? "" : ", ") + std::string("to ") + std::to_string(peer) + ": " + bytes(b);
    first = false;
    total += b;
  }
  return s + "} = " + bytes(total);
}

std::string show(const std::vector<int>& g) {
  std::string s = "[";
  for (std::size_t i = 0; i < g.size(); ++i) s += (i ? "," : "") + std::to_string(g[i]);
  return s + "]";
}

bool near(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(1.0, std::fabs(b)); }

/// Equal maps, an entry of 0 bytes counting as absent.
bool same(const std::map<int, double>& got, const std::map<int, double>& want) {
  for (const auto& [peer, b] : got) {
    const auto it = want.find(peer);
    if (!near(b, it == want.end() ? 0.0 : it->second)) return false;
  }
  for (const auto& [peer, b] : want)
    if (!got.count(peer) && !near(0.0, b)) return false;
  return true;
}

/// Layouts (tp, sp, ep, dp, pp) and orders of the wire check; the sets of axes whose groups it uses.
const std::vector<AxisArray> kWireLayouts = {{2, 1, 1, 2, 4}, {4, 1, 1, 2, 1}, {2, 2, 2, 1, 2}, {1, 3, 1, 2, 2}, {2, 1, 2, 4, 1}};
const std::vector<std::string> kWireOrders = {"tp-sp-ep-dp-pp", "pp-dp-ep-sp-tp", "dp-tp-pp-ep-sp"};
const std::vector<std::string> kWireSets = {"tp", "sp", "ep", "dp", "pp", "ep-dp", "sp-ep-dp"};

}  // namespace

int check_capacity_prefix(int argc, char** argv, BeforeFn fn) {
  return run_exercise(argc, argv, kHintPrefix1, kHintPrefix2, [fn](Communicator& world, Ops&) {
    return verdict(world, "capacity_prefix", capacity_prefix_problem(fn));
  });
}

std::string capacity_prefix_problem(const BeforeFn& fn) {
  struct Shape {
    std::int64_t b;
    int E, k;
  };
  const std::vector<Shape> shapes = {{1, 4, 2}, {2, 3, 1}, {3, 8, 2}};
  std::uint32_t seed = 7;
  for (const PrefixLayout& l : prefix_layouts())
    for (const Shape& sh : shapes) {
      const int n = static_cast<int>(l.segs.size()), E = sh.E;
      const std::int64_t b = sh.b, T = l.T;
      // Every position's choices: k distinct experts, at random.
      std::mt19937 rng(seed++);
      std::vector<std::int64_t> at(b * T * E, 0);  // [b][T][E] 1 where position t chose e
      for (std::int64_t s = 0; s < b; ++s)
        for (std::int64_t t = 0; t < T; ++t) {
          const int e0 = static_cast<int>(rng() % E), e1 = (e0 + 1 + static_cast<int>(rng() % (E - 1))) % E;
          at[(s * T + t) * E + e0] = 1;
          if (sh.k == 2) at[(s * T + t) * E + e1] = 1;
        }
      // What each rank counts per segment (what step 6 all-gathers).
      std::vector<std::vector<std::int64_t>> chosen(n);
      for (int q = 0; q < n; ++q) {
        const std::int64_t G = static_cast<std::int64_t>(l.segs[q].size());
        chosen[q].assign(b * G * E, 0);
        for (std::int64_t s = 0; s < b; ++s)
          for (std::int64_t h = 0; h < G; ++h)
            for (std::int64_t t = l.segs[q][h].start; t < l.segs[q][h].start + l.segs[q][h].len; ++t)
              for (int e = 0; e < E; ++e) chosen[q][(s * G + h) * E + e] += at[(s * T + t) * E + e];
      }
      std::ostringstream at_case;
      at_case << l.name << ", T " << T << ", " << b << (b == 1 ? " sequence" : " sequences") << ", E " << E
              << ", top-" << sh.k;
      for (int me = 0; me < n; ++me) {
        const std::int64_t G = static_cast<std::int64_t>(l.segs[me].size());
        const std::vector<std::int64_t> got = fn(me, l.segs, chosen, b, E);
        if (static_cast<std::int64_t>(got.size()) != b * G * E)
          return at_case.str() + ": rank " + std::to_string(me) + " returned " + std::to_string(got.size()) +
                 " counts, expected " + std::to_string(b * G * E) + " ([b][G][E] = [" + std::to_string(b) + "][" +
                 std::to_string(G) + "][" + std::to_string(E) + "])";
        for (std::int64_t s = 0; s < b; ++s)
          for (std::int64_t g = 0; g < G; ++g) {
            std::vector<std::int64_t> want(E, 0);  // every position before the segment's first
            for (std::int64_t t = 0; t < l.segs[me][g].start; ++t)
              for (int e = 0; e < E; ++e) want[e] += at[(s * T + t) * E + e];
            const std::size_t from = static_cast<std::size_t>((s * G + g) * E);
            if (!std::equal(want.begin(), want.end(), got.begin() + from))
              return at_case.str() + ": rank " + std::to_string(me) + ", sequence " + std::to_string(s) +
                     ", its segment " + std::to_string(g) + " (positions " + std::to_string(l.segs[me][g].start) +
                     ".." + std::to_string(l.segs[me][g].start + l.segs[me][g].len - 1) + "): before = " +
                     show(got, from, E) + ", expected " + show(want, 0, E) + " (experts 0.." + std::to_string(E - 1) +
                     ")";
          }
      }
    }
  return "";
}

int check_wire_bytes(int argc, char** argv, WireFn wire, AcrossFn across) {
  return run_exercise(argc, argv, kHintWire1, kHintWire2, [wire, across](Communicator& world, Ops&) {
    return verdict(world, "wire_bytes", wire_bytes_problem(wire, across));
  });
}

std::string wire_bytes_problem(const WireFn& wire, const AcrossFn& across) {
  // Part 1 on every case, then part 2 (fed the simulation's bytes, so that its failures are its own).
  for (int part = 1; part <= 2; ++part)
    for (const AxisArray& sizes : kWireLayouts) {
      int world = 1;
      for (int s : sizes) world *= s;
      for (const std::string& order : kWireOrders) {
        const ProcessGrid grid(sizes, order, world);
        for (std::size_t si = 0; si < kWireSets.size(); ++si) {
          const AxisSet set = AxisSet::parse(kWireSets[si]);
          for (std::size_t oi = 0; oi < kOps.size(); ++oi) {
            const std::string& op = kOps[oi];
            for (const std::vector<int>& members : grid.groups(set)) {
              const int n = static_cast<int>(members.size()), m = 256 * (3 + static_cast<int>(oi + si));
              std::vector<std::map<int, double>> sent;
              const std::string bad = simulate(op, n, m, sent);
              if (!bad.empty()) return "internal error of the check: " + bad;
              // The counted payload: the whole buffer, or the share of an all-gather.
              const double payload = 4.0 * m * (op == "all_gather" ? 1 : n);
              for (int i = 0; i < n; ++i) {
                const int rank = members[i];
                std::map<int, double> want;
                for (const auto& [j, b] : sent[i]) want[members[j]] += b;
                const std::string call = grid.describe() + ", the " + set.name() + " group " + show(members) +
                                         " (n " + std::to_string(n) + "): rank " + std::to_string(rank) + "'s " + op +
                                         " of payload " + bytes(payload);
                if (part == 1) {
                  const std::map<int, double> got = wire(members, rank, op, payload);
                  if (!same(got, want))
                    return call + " sends " + show(got) + ", expected " + show(want) + " (counted in a simulated " +
                           kAlgo[oi] + ")";
                  continue;
                }
                for (int G : {1, 2, 4, 8}) {
                  double across_want = 0;
                  for (const auto& [peer, b] : want)
                    if (peer / G != rank / G) across_want += b;
                  const double got = across(want, rank, G);
                  if (!near(got, across_want)) {
                    std::string where = "rank " + std::to_string(rank) + " on node " + std::to_string(rank / G);
                    for (const auto& [peer, b] : want) where += ", " + std::to_string(peer) + " on " + std::to_string(peer / G);
                    return call + " sends " + show(want) + "; on nodes of " + std::to_string(G) +
                           (G == 1 ? " rank (" : " ranks (") + where + "): " + bytes(got) + " across nodes, expected " +
                           bytes(across_want);
                  }
                }
              }
            }
          }
        }
      }
    }
  return "";
}

}  // namespace fivefold::ch07
