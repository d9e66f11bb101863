// SPDX-License-Identifier: MIT
// The exercise checks (see check.hpp): the dispatch permutation against the chapter's plan, the
// count exchange against every rank's counts.
#include "chapters/06_expert_parallel/exercises/check.hpp"

#include <sstream>

#include "chapters/06_expert_parallel/ep_moe.hpp"
#include "common/rng.hpp"

namespace fivefold::ch06 {

namespace {

const char* const kHintDispatch1 =
    "the idea and the API\n"
    "  Each rank sends one buffer; rank j's part must be contiguous, and inside it the rows of each\n"
    "  of rank j's experts must be contiguous too, so that j can run expert by expert. A row is one\n"
    "  kept assignment (token i, its j-th choice), not a token. Think of a sort by expert that keeps\n"
    "  the token order (a counting sort: count, then place).\n"
    "  API: std::vector (<vector>); experts e .. e + E/ep - 1 live on rank e / (E/ep).";
const char* const kHintDispatch2 =
    "the rule\n"
    "  For e = 0 .. E-1, for token i = 0 .. tokens-1 in order, for j = 0 .. k-1: if choice[i*k+j] == e\n"
    "  and kept[i*k+j], append i to rows. rows_to[r] = number of rows whose expert e has e / (E/ep) == r.";
const char* const kHintCounts1 =
    "the idea and the API\n"
    "  Rank j needs to know, before the rows arrive, how many it will get from each rank for each of\n"
    "  its experts. Each rank knows its own counts for every expert, and the experts of rank j are a\n"
    "  contiguous block of them. Which collective delivers a different block to every rank?\n"
    "  API: the collectives of backends/communicator.hpp (int32 tensors may be moved); a host vector\n"
    "  to a device tensor and back: common/tensor.hpp and Ops (backends/ops.hpp).";
const char* const kHintCounts2 =
    "the rule\n"
    "  in = per_expert as int32 [E] (block j = experts j*E/ep .. of rank j); all_to_all(in, out) with out\n"
    "  int32 [E]; the answer is out read back: index i*E/ep + e is from rank i for my local expert e.";

}  // namespace

int check_dispatch(int argc, char** argv, DispatchFn fn) {
  return run_exercise(argc, argv, kHintDispatch1, kHintDispatch2, [fn](Communicator& world, Ops&) {
    struct Case {
      int experts, topk, ep;
      std::int64_t seq, seqs;
      double cf;
    };
    const std::vector<Case> cases = {{4, 1, 2, 4, 2, 0.0}, {4, 2, 2, 4, 2, 0.0}, {8, 2, 4, 8, 3, 1.0},
                                     {8, 3, 2, 6, 2, 0.5}, {6, 2, 3, 5, 2, 0.0}, {8, 1, 1, 4, 1, 0.0}};
    std::string problem;
    int seed = 0;
    for (const Case& c : cases) {
      if (!problem.empty()) break;
      const std::int64_t N = c.seq * c.seqs;
      std::vector<float> probs(N * c.experts);
      for (std::int64_t i = 0; i < N; ++i) {  // a random softmax row per token
        double sum = 0;
        for (int e = 0; e < c.experts; ++e) sum += probs[i * c.experts + e] = 0.05f + rng::normal(11, "p" + std::to_string(seed), i * c.experts + e) * rng::normal(11, "p" + std::to_string(seed), i * c.experts + e);
        for (int e = 0; e < c.experts; ++e) probs[i * c.experts + e] = static_cast<float>(probs[i * c.experts + e] / sum);
      }
      ++seed;
      const nn::Routing r = nn::route_tokens(probs, c.seq, c.experts, c.topk, c.cf, 0.0);
      const DispatchPlan want = dispatch_plan(r, c.ep, 0);
      std::vector<std::int32_t> rows;
      std::vector<std::int64_t> rows_to;
      fn(r.choice, r.kept, N, c.topk, c.experts, c.ep, rows, rows_to);
      std::ostringstream at;
      at << "E " << c.experts << ", top-" << c.topk << ", ep " << c.ep << ", " << N << " tokens"
         << (c.cf > 0 ? " (some assignments dropped)" : "");
      std::ostringstream s;
      if (rows_to != want.rows_to) {
        s << at.str() << ": rows_to has " << rows_to.size() << " entries [";
        for (std::size_t i = 0; i < rows_to.size(); ++i) s << (i ? " " : "") << rows_to[i];
        s << "], expected [";
        for (std::size_t i = 0; i < want.rows_to.size(); ++i) s << (i ? " " : "") << want.rows_to[i];
        s << "]";
        problem = s.str();
      } else if (rows.size() != want.token.size()) {
        s << at.str() << ": " << rows.size() << " rows, expected " << want.token.size() << " (one per kept assignment)";
        problem = s.str();
      } else {
        for (std::size_t p = 0; p < rows.size() && problem.empty(); ++p)
          if (rows[p] != want.token[p]) {
            const int e = r.choice[want.slot[p]];
            s << at.str() << ": row " << p << " (expert " << e << "'s block, for rank " << e / (c.experts / c.ep)
              << ") carries token " << rows[p] << ", expected token " << want.token[p];
            problem = s.str();
          }
      }
    }
    return verdict(world, "dispatch_permutation", problem);
  });
}

int check_count_exchange(int argc, char** argv, CountExchangeFn fn) {
  return run_exercise(argc, argv, kHintCounts1, kHintCounts2, [fn](Communicator& world, Ops& ops) {
    const int n = world.size(), me = world.rank(), E = 2 * n;
    std::vector<std::int64_t> mine(E);
    for (int e = 0; e < E; ++e) mine[e] = (me * 7 + e * 3) % 5 + (e == me ? 0 : 1);  // some zeros
    world.reset_counts();
    const std::vector<std::int64_t> got = fn(world, ops, mine);
    const CommCounts counted = world.counts();
    // Every rank's counts, gathered uncounted, give the expected answer.
    std::vector<std::int32_t> m32(mine.begin(), mine.end());
    Tensor all = ops.empty({static_cast<std::int64_t>(n) * E}, DType::i32);
    {
      Uncounted quiet(world);
      world.all_gather(ops.upload(Tensor::from_vector(m32, {E})), all);
    }
    const Tensor h = all.to(Device::host);
    const int El = E / n;
    std::string problem;
    std::ostringstream s;
    if (static_cast<int>(got.size()) != E) {
      s << "rank " << me << ": " << got.size() << " counts, expected " << E << " (ranks x local experts)";
      problem = s.str();
    }
    for (int i = 0; i < n && problem.empty(); ++i)
      for (int e = 0; e < El && problem.empty(); ++e) {
        const std::int64_t want = h.at<std::int32_t>(i * E + me * El + e);
        if (got[i * El + e] != want) {
          s << "rank " << me << ": from rank " << i << " for local expert " << e << " (expert " << me * El + e
            << "): got " << got[i * El + e] << ", rank " << i << " sends " << want;
          problem = s.str();
        }
      }
    if (problem.empty()) {
      const auto it = counted.find("all_to_all");
      std::int64_t calls = 0;
      for (const auto& [op, c] : counted) calls += c.calls;
      if (it == counted.end() || it->second.calls != 1 || calls != 1 || it->second.payload_bytes != 4 * E) {
        s << "rank " << me << ": the right counts, but the exchange made " << calls << " call(s):";
        for (const auto& [op, c] : counted) s << " " << op << " x" << c.calls << " (" << c.payload_bytes << " bytes handed over)";
        s << "; every rank received more than the counts of its own experts, or in more than one call";
        problem = s.str();
      }
    }
    return verdict(world, "count_exchange", problem);
  });
}

}  // namespace fivefold::ch06
