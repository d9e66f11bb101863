// SPDX-License-Identifier: MIT
// The exercise checks (see check.hpp): the log-sum-exp merge against one attention over every
// key, and the zigzag map against its invariants.
#include "chapters/05_sequence_parallel/exercises/check.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include "common/rng.hpp"
#include "nn/attention.hpp"

namespace fivefold::ch05 {

namespace {

const char* const kHintMerge1 =
    "the idea and the API\n"
    "  Each side is a softmax over its own keys, normalised by its own sum of exponentials, e^lse.\n"
    "  Over the union of the keys the normaliser is the sum of both sums: each side's output has to\n"
    "  be re-weighted by its share of it, and lse becomes the log of that sum. Compute it without\n"
    "  overflow (subtract the larger lse first), and mind a row where a side saw no key: its lse is\n"
    "  -inf, e^-inf is 0, but -inf - (-inf) is NaN.\n"
    "  API: std::exp, std::log, std::isinf (<cmath>), std::max (<algorithm>);\n"
    "  -std::numeric_limits<double>::infinity() (<limits>) is -inf.";
const char* const kHintMerge2 =
    "the rule\n"
    "  For each row: m = max(lse, lse_b); if m is -inf, nothing to do (both sides empty).\n"
    "  lse' = m + log(e^(lse - m) + e^(lse_b - m));\n"
    "  out' = out * e^(lse - lse') + out_b * e^(lse_b - lse'), element by element; then lse = lse'.\n"
    "  The chapter's own merge is Ops::attention_merge (backends/ops.hpp), used by nn::OnlineAttention.";

const char* const kHintZigzag1 =
    "the idea and the API\n"
    "  Under a causal mask position t attends to t + 1 keys: late positions cost more than early ones.\n"
    "  Cut the sequence into twice as many equal chunks as ranks and give every rank one cheap chunk\n"
    "  and one expensive chunk whose costs add up to the same total on every rank: which pairs of\n"
    "  chunks have equal sums? API: std::vector<std::int64_t>::push_back (<vector>).";
const char* const kHintZigzag2 =
    "the rule\n"
    "  c = T / (2 sp); rank r holds chunk r (positions r*c .. r*c + c - 1) and chunk 2 sp - 1 - r\n"
    "  (positions (2 sp - 1 - r)*c .. (2 sp - r)*c - 1), in that order. The chapter's own map is\n"
    "  ch05::local_segments (chapters/05_sequence_parallel/sp_layout.hpp).";

/// A deterministic random fp32 tensor.
Tensor random(Ops& ops, const Shape& shape, const std::string& name) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  std::vector<float> v(n);
  for (std::int64_t i = 0; i < n; ++i) v[i] = rng::normal(7, name, i);
  return ops.upload(Tensor::from_vector(v, shape));
}

std::vector<double> doubles(const Tensor& t) {
  const Tensor h = t.to(Device::host);
  std::vector<double> v(h.numel());
  for (std::int64_t i = 0; i < h.numel(); ++i) v[i] = h.at<float>(i);
  return v;
}

}  // namespace

int check_lse_merge(int argc, char** argv, LseMergeFn fn) {
  return run_exercise(argc, argv, kHintMerge1, kHintMerge2, [fn](Communicator& world, Ops& ops) {
    const int n = world.size(), r = world.rank();
    const std::int64_t B = 1, T = 6, H = 2, hd = 4, S = 4, half = S / 2;  // S keys per rank, two blocks of S/2
    // Queries at positions -1 (sees no key at all), then spread over the keys' range; rank j's
    // keys at positions j*S .. j*S+S-1, so a query before them sees none of that block. Every
    // rank attends to its keys as two blocks: there is a merge to do even on one rank.
    std::vector<std::int32_t> qp(T);
    for (std::int64_t t = 0; t < T; ++t) qp[t] = t == 0 ? -1 : static_cast<std::int32_t>((t * n * S) / T);
    const Tensor q_pos = ops.upload(Tensor::from_vector(qp, {T}));
    const Tensor q = random(ops, {B, T, H, hd}, "q");
    const Tensor k_all = random(ops, {B, n * S, 1, hd}, "k"), v_all = random(ops, {B, n * S, 1, hd}, "v");
    const Tensor k_pos_all = nn::positions(ops, 0, n * S);
    Tensor full = ops.empty({B, T, H, hd}), full_lse = ops.empty({B, H, T});
    ops.attention_forward(full, full_lse, q, k_all, v_all, q_pos, k_pos_all);  // every key at once
    Tensor o = ops.empty({2, B, T, H, hd}), l = ops.empty({2, B, H, T});
    for (std::int64_t h = 0; h < 2; ++h) {  // my two blocks, one after the other
      const std::int64_t at = r * S + h * half;
      Tensor oh = o.flat(h * B * T * H * hd, B * T * H * hd).view({B, T, H, hd});
      Tensor lh = l.flat(h * B * H * T, B * H * T).view({B, H, T});
      ops.attention_forward(oh, lh, q, nn::slice_dim1(ops, k_all, at, half), nn::slice_dim1(ops, v_all, at, half), q_pos,
                            k_pos_all.flat(at, half));
    }
    Tensor all_o = ops.empty({n * o.numel()}), all_l = ops.empty({n * l.numel()});
    world.all_gather(o, all_o);
    world.all_gather(l, all_l);
    // Rows (t, h) of hd values; lse [B, H, T] reordered to the same rows.
    const std::vector<double> ao = doubles(all_o), al = doubles(all_l);
    auto part = [&](int j, std::vector<double>& out, std::vector<double>& lse) {
      out.assign(ao.begin() + j * T * H * hd, ao.begin() + (j + 1) * T * H * hd);
      lse.assign(T * H, 0.0);
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t h = 0; h < H; ++h) lse[t * H + h] = al[j * T * H + h * T + t];
    };
    std::vector<double> out, lse;
    part(0, out, lse);
    for (int j = 1; j < 2 * n; ++j) {  // block j: rank j / 2's half j % 2
      std::vector<double> ob, lb;
      part(j, ob, lb);
      fn(out, lse, ob, lb, static_cast<int>(hd));
    }
    const std::vector<double> fo = doubles(full), fl = doubles(full_lse);
    std::string problem;
    for (std::int64_t t = 0; t < T && problem.empty(); ++t)
      for (std::int64_t h = 0; h < H && problem.empty(); ++h) {
        const std::int64_t row = t * H + h;
        const double want_l = fl[h * T + t], got_l = lse[row];
        std::ostringstream where;
        where << "query " << t << " (position " << qp[t] << (qp[t] < 0 ? ", before every key" : "") << ", head " << h
              << ", merged over " << 2 * n << " blocks)";
        const bool l_ok = std::isinf(want_l) ? (std::isinf(got_l) && got_l < 0) : std::abs(got_l - want_l) <= 1e-5 * (1 + std::abs(want_l));
        if (!l_ok) {
          std::ostringstream s;
          s << where.str() << ": lse expected " << want_l << " got " << got_l;
          problem = s.str();
        }
        for (std::int64_t e = 0; e < hd && problem.empty(); ++e) {
          const double want = fo[row * hd + e], got = out[row * hd + e];
          if (!(std::abs(got - want) <= 1e-5 * (1 + std::abs(want)))) {
            std::ostringstream s;
            s << where.str() << ": out[" << e << "] expected " << want << " got " << got;
            problem = s.str();
          }
        }
      }
    return verdict(world, "lse_merge", problem);
  });
}

int check_zigzag_map(int argc, char** argv, ZigzagMapFn fn) {
  return run_exercise(argc, argv, kHintZigzag1, kHintZigzag2, [fn](Communicator& world, Ops&) {
    std::string problem;
    const std::vector<std::pair<std::int64_t, int>> cases = {{8, 1}, {8, 2}, {16, 4}, {24, 3}, {48, 4}, {40, 5}};
    for (const auto& [T, sp] : cases) {
      if (!problem.empty()) break;
      std::ostringstream at;
      at << "T " << T << ", sp " << sp;
      std::vector<int> owner(T, -1);
      std::vector<std::int64_t> work(sp, 0);
      for (int r = 0; r < sp && problem.empty(); ++r) {
        const std::vector<std::int64_t> p = fn(T, sp, r);
        std::ostringstream s;
        if (static_cast<std::int64_t>(p.size()) != T / sp) {
          s << at.str() << ", rank " << r << ": holds " << p.size() << " positions, expected T/sp = " << T / sp;
          problem = s.str();
          break;
        }
        std::int64_t runs = 0;
        for (std::size_t i = 0; i < p.size() && problem.empty(); ++i) {
          if (p[i] < 0 || p[i] >= T) {
            s << at.str() << ", rank " << r << ": position " << p[i] << " is outside 0.." << T - 1;
            problem = s.str();
          } else if (owner[p[i]] >= 0) {
            s << at.str() << ": position " << p[i] << " is held by rank " << owner[p[i]] << " and by rank " << r;
            problem = s.str();
          } else {
            owner[p[i]] = r;
            work[r] += p[i] + 1;
            if (i == 0 || p[i] != p[i - 1] + 1) ++runs;
          }
        }
        for (std::size_t i = 1; i < p.size() && problem.empty(); ++i)
          if (p[i] <= p[i - 1]) {
            s << at.str() << ", rank " << r << ": position " << p[i] << " comes after " << p[i - 1]
              << " (the positions are not in increasing order)";
            problem = s.str();
          }
        if (problem.empty() && (runs > 2 || (T / sp) % 2 != 0)) {
          s << at.str() << ", rank " << r << ": " << runs << " runs of consecutive positions (in the order held), "
            << "expected two chunks of T/(2 sp) = " << T / (2 * sp);
          problem = s.str();
        }
      }
      for (std::int64_t t = 0; t < T && problem.empty(); ++t)
        if (owner[t] < 0) problem = at.str() + ": position " + std::to_string(t) + " is held by no rank";
      for (int r = 1; r < sp && problem.empty(); ++r)
        if (work[r] != work[0])
          problem = at.str() + ": rank 0 computes " + std::to_string(work[0]) + " causal score entries per head, rank " +
                    std::to_string(r) + " computes " + std::to_string(work[r]) + ": not balanced";
    }
    return verdict(world, "zigzag_map", problem);
  });
}

}  // namespace fivefold::ch05
