// SPDX-License-Identifier: MIT
// The attention work per rank of the ring runs (steps 3 and 4): counted, expected, timed, ideal.
#include "chapters/05_sequence_parallel/steps.hpp"
#include <sstream>

#include "common/check.hpp"

namespace fivefold::ch05 {

namespace {


}  // namespace

void show_work(Context& ctx, Lab& lab, SpMode ran) {
  const ModelConfig& c = lab.o.cfg;
  const int n = ctx.size(), r = ctx.rank();
  Table t{"Attention work per rank, one training step (score entries: query x key pairs computed per sequence "
          "and head; ideal = the causal total / sp)",
          {"mode", "rank", "blocks computed", "blocks skipped", "score entries", "ideal", "core ms (fwd+bwd)"},
          {}};
  for (SpMode mode : {SpMode::ring, SpMode::zigzag}) {
    const std::string name = sp_mode_name(mode);
    if (!lab.runs.count(name)) continue;
    const RingWork& w = lab.runs.at(name).work;
    const auto [pairs, scores] = RingAttention::expected_work(mode, c.seq, n, r);
    if (mode == ran) {
    CheckResult counted = compare_exact(name + ": blocks and score entries computed == the causal layout's",
                                static_cast<double>(w.pairs), static_cast<double>(c.layers * pairs));
    merge(counted, compare_exact(counted.name, static_cast<double>(w.scores), static_cast<double>(c.layers * scores)));
    ctx.check(counted);
    }
    std::int64_t total = 0;
    for (int q = 0; q < n; ++q) total += RingAttention::expected_work(mode, c.seq, n, q).second;
    const std::vector<std::string> lines = ctx.gather(std::to_string(w.pairs / c.layers) + " " +
                                                      std::to_string(w.skipped / c.layers) + " " +
                                                      std::to_string(w.scores / c.layers) + " " + fmt("%.2f", w.seconds * 1e3));
    std::int64_t lo = -1, hi = 0;
    for (int q = 0; q < n; ++q) {
      std::istringstream in(lines[q]);
      std::string pc, ps, sc, ms;
      in >> pc >> ps >> sc >> ms;
      t.add({name, std::to_string(q), pc, ps, sc, std::to_string(total / n), ms});
      const std::int64_t v = std::stoll(sc);
      lo = lo < 0 ? v : std::min(lo, v);
      hi = std::max(hi, v);
    }
    nlohmann::json& sec = ctx.summary.sections["sequence"][name];
    nlohmann::json per_rank = nlohmann::json::array();
    for (const std::string& line : lines) {
      std::istringstream in(line);
      std::int64_t pc = 0, ps = 0, sc = 0;
      double ms = 0;
      in >> pc >> ps >> sc >> ms;
      per_rank.push_back({{"blocks_computed", pc}, {"blocks_skipped", ps}, {"score_entries", sc}, {"core_ms", ms}});
    }
    sec["work"] = {{"score_entries_min", lo}, {"score_entries_max", hi}, {"ideal", total / n}, {"ranks", per_rank}};
    if (mode == SpMode::zigzag && mode == ran) ctx.check(compare_exact("zigzag: every rank computes the same score entries", hi, lo));
  }
  ctx.show(t);
}

}  // namespace fivefold::ch05
