// SPDX-License-Identifier: MIT
// ProcessGrid's groups against Megatron-LM's (megatron/core/parallel_state.py), re-derived here
// from its semantics in a few lines, sharing no arithmetic with ProcessGrid:
//
//   RankGenerator(tp, ep, dp, pp, cp, order): the ranks are a mixed-radix number whose digits are
//   the axes of `order`, the first one fastest (an axis left out of `order` must have size 1 and
//   goes at the end). get_ranks("tp-cp") is generate_masked_orthogonal_rank_groups: a group per
//   value of the digits NOT named, numbered by those digits (first fastest); its members are the
//   values of the named digits, listed by their own mixed-radix index (first fastest).
//
// Megatron builds two generators from ONE order string (default "tp-cp-ep-dp-pp"):
//   decoder: RankGenerator(tp, ep=1, dp=world/(tp*cp*pp), pp, cp, order)   (dense layers)
//   expert:  RankGenerator(etp, ep, dp=world/(etp*ep*pp), pp, cp=1, order) (MoE layers)
// (older versions wrote the expert order "tp-ep-dp-pp"; cp has size 1 there, so it is the same.)
// Here etp = our tp (experts split like the dense weights) and the order string is ours with sp
// spelled cp. What the tests establish, for every layout of 1..32 ranks:
//   1. Dense: our {tp}, {sp}, {pp} and every union of them with {ep,dp} (Megatron's dp = our
//      ep*dp) are the decoder generator's groups, member order and group order included, exactly
//      for the 48 orders where ep and dp are neighbours (ep-dp or dp-ep): Megatron's dp is ONE
//      digit, ours two, and only two neighbouring digits make one digit (d = ep_c + ep*dp_c, or
//      dp_c + dp*ep_c; the decoder's ep has size 1, so where the string puts it does not matter).
//      With anything between them (all sizes 2) no Megatron order at all gives our {ep,dp} groups.
//   2. Experts, sp = 1: our {tp}, {ep}, {dp}, {pp} and their unions are the expert generator's
//      groups for all 120 orders: with cp = 1 its digits are ours one for one.
//   3. Experts, sp > 1: the expert generator has no cp, so its dp (world/(tp*ep*pp) = our sp*dp)
//      must absorb our sp. Our {sp,dp} groups are its dp groups (and {ep} its ep) exactly when sp
//      and dp are neighbours in the order (48 orders), by the argument of 1. NOT in the default
//      order tp-sp-ep-dp-pp (ep sits between them): whenever sp > 1 and ep > 1 they differ. The
//      true relation there (whenever sp, ep, dp are neighbours, 36 orders): Megatron sees one
//      digit c = our {sp,ep,dp}-group-local rank and splits it with whichever of ep and dp comes
//      first in the order as the fast part. In the default order its expert ep groups are runs of
//      ep consecutive members of our {sp,ep,dp} groups and its expert dp groups take every ep-th
//      member, so its ep spans mixed (sp, ep) coordinates. Orders with dp between sp and ep
//      (tp-sp-dp-ep-pp and 11 more) give both dense and expert equivalences at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "brute_force.hpp"
#include "common/process_grid.hpp"

namespace fivefold::grid_test {
namespace {

std::vector<std::string> split_dashes(const std::string& s) {
  std::vector<std::string> out(1);
  for (char ch : s) {
    if (ch == '-')
      out.emplace_back();
    else
      out.back() += ch;
  }
  return out;
}

/// The groups of a mixed-radix rank space: digit i has size sizes[i] (digit 0 fastest); a group
/// per value of the digits with in_group[i] false, its members the values of the others.
Groups masked_groups(const std::vector<int>& sizes, const std::vector<bool>& in_group) {
  std::vector<int> stride, in, out;
  int world = 1;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    stride.push_back(world);
    world *= sizes[i];
    (in_group[i] ? in : out).push_back(static_cast<int>(i));
  }
  // The rank offset of number n written in the digits of `digits`, the first one fastest.
  auto offset = [&](int n, const std::vector<int>& digits) {
    int r = 0;
    for (int d : digits) {
      r += (n % sizes[d]) * stride[d];
      n /= sizes[d];
    }
    return r;
  };
  int group_size = 1;
  for (int d : in) group_size *= sizes[d];
  Groups groups(world / group_size);
  for (int g = 0; g < world / group_size; ++g)
    for (int m = 0; m < group_size; ++m) groups[g].push_back(offset(g, out) + offset(m, in));
  return groups;
}

/// Megatron's RankGenerator (see the file comment).
struct MegatronRanks {
  std::vector<std::string> tokens;  // fastest first
  std::vector<int> sizes;

  MegatronRanks(int tp, int ep, int dp, int pp, int cp, const std::string& order) : tokens(split_dashes(order)) {
    const std::vector<std::pair<std::string, int>> size_of = {
        {"tp", tp}, {"pp", pp}, {"dp", dp}, {"ep", ep}, {"cp", cp}};
    for (const auto& [name, size] : size_of)
      if (std::find(tokens.begin(), tokens.end(), name) == tokens.end()) {
        if (size != 1) throw std::invalid_argument(name + " has size > 1 but is not in the order " + order);
        tokens.push_back(name);
      }
    for (const std::string& t : tokens)
      for (const auto& [name, size] : size_of)
        if (t == name) sizes.push_back(size);
  }

  /// get_ranks("tp-cp"), "dp", ...
  Groups get_ranks(const std::string& which) const {
    std::vector<bool> mask(tokens.size(), false);
    for (const std::string& t : split_dashes(which))
      mask[std::find(tokens.begin(), tokens.end(), t) - tokens.begin()] = true;
    return masked_groups(sizes, mask);
  }
};

// ---- layouts and orders --------------------------------------------------------------------

enum { TP = 0, SP = 1, EP = 2, DP = 3, PP = 4 };

/// Every (tp, sp, ep, dp, pp) whose product is 1..max_world.
std::vector<Sizes> all_layouts(int max_world) {
  std::vector<Sizes> out;
  for (int n = 1; n <= max_world; ++n)
    for (int tp = 1; tp <= n; ++tp)
      for (int sp = 1; sp <= n; ++sp)
        for (int ep = 1; ep <= n; ++ep)
          for (int dp = 1; dp <= n; ++dp)
            if (n % (tp * sp * ep * dp) == 0) out.push_back({tp, sp, ep, dp, n / (tp * sp * ep * dp)});
  return out;
}

/// The 120 orders, as axis indices fastest first.
std::vector<std::vector<int>> all_orders() {
  std::vector<int> perm{TP, SP, EP, DP, PP};
  std::vector<std::vector<int>> out;
  do out.push_back(perm);
  while (std::next_permutation(perm.begin(), perm.end()));
  return out;
}

std::string our_order(const std::vector<int>& order) {
  std::string s;
  for (int a : order) s += (s.empty() ? "" : "-") + std::string(kNames[a]);
  return s;
}

/// The same order as Megatron spells it (sp is cp).
std::string megatron_order(const std::vector<int>& order) {
  std::string s;
  for (int a : order) s += (s.empty() ? "" : "-") + std::string(a == SP ? "cp" : kNames[a]);
  return s;
}

bool neighbours(const std::vector<int>& order, int a, int b) {
  const auto pa = std::find(order.begin(), order.end(), a), pb = std::find(order.begin(), order.end(), b);
  return std::abs(pa - pb) == 1;
}

/// True when the axes @p axes occupy consecutive places of @p order.
bool contiguous(const std::vector<int>& order, const std::vector<int>& axes) {
  std::vector<long> pos;
  for (int a : axes) pos.push_back(std::find(order.begin(), order.end(), a) - order.begin());
  return *std::max_element(pos.begin(), pos.end()) - *std::min_element(pos.begin(), pos.end()) ==
         static_cast<long>(axes.size()) - 1;
}

std::string describe(const Sizes& s, const std::string& order) {
  return "tp " + std::to_string(s[0]) + " sp " + std::to_string(s[1]) + " ep " + std::to_string(s[2]) + " dp " +
         std::to_string(s[3]) + " pp " + std::to_string(s[4]) + ", order " + order;
}

/// A Megatron token set ("tp-dp") and the axes of ours it stands for.
struct Correspondence {
  std::string megatron;
  AxisSet ours;
};

/// Every non-empty subset of four Megatron tokens, each mapped to a set of our axes.
std::vector<Correspondence> subsets(const std::vector<std::pair<std::string, AxisSet>>& tokens) {
  std::vector<Correspondence> out;
  for (unsigned m = 1; m < (1u << tokens.size()); ++m) {
    Correspondence c;
    unsigned bits = 0;
    for (std::size_t i = 0; i < tokens.size(); ++i)
      if (m >> i & 1u) {
        c.megatron += (c.megatron.empty() ? "" : "-") + tokens[i].first;
        bits |= tokens[i].second.bits();
      }
    c.ours = AxisSet::from_bits(bits);
    out.push_back(c);
  }
  return out;
}

/// Ours == Megatron's: as sets of member sets, then the member order inside each group, then
/// (unless @p group_order is false) the whole list, group order too. @p what() names the case
/// (built only on a failure: this runs about two million times).
template <typename What>
void expect_same_groups(const Groups& ours, const Groups& megatron, What name, bool group_order = true) {
  if (group_order && ours == megatron) return;
  const std::string what = name();
  ASSERT_EQ(as_sets(ours), as_sets(megatron)) << what << ": members";
  std::map<std::vector<int>, std::vector<int>> by_members;  // sorted members -> Megatron's list
  for (const std::vector<int>& h : megatron) {
    std::vector<int> key = h;
    std::sort(key.begin(), key.end());
    by_members[key] = h;
  }
  for (const std::vector<int>& g : ours) {
    std::vector<int> key = g;
    std::sort(key.begin(), key.end());
    ASSERT_EQ(g, by_members.at(key)) << what << ": member order (group-local rank vs masked index)";
  }
  if (group_order) {
    ASSERT_EQ(ours, megatron) << what << ": group order";
  }
}

// Megatron decoder tokens -> our axes (its dp is our ep x dp, its cp our sp; its ep is 1).
const std::vector<Correspondence> kDense =
    subsets({{"tp", {Axis::tp}}, {"cp", {Axis::sp}}, {"dp", {Axis::ep, Axis::dp}}, {"pp", {Axis::pp}}});
// Megatron expert tokens -> our axes when sp = 1.
const std::vector<Correspondence> kExpert =
    subsets({{"tp", {Axis::tp}}, {"ep", {Axis::ep}}, {"dp", {Axis::dp}}, {"pp", {Axis::pp}}});
// ... and when sp > 1 with sp and dp neighbours (its dp is our sp x dp).
const std::vector<Correspondence> kExpertSp =
    subsets({{"tp", {Axis::tp}}, {"ep", {Axis::ep}}, {"dp", {Axis::sp, Axis::dp}}, {"pp", {Axis::pp}}});

MegatronRanks decoder_of(const Sizes& s, const std::vector<int>& order) {
  return MegatronRanks(s[TP], 1, s[EP] * s[DP], s[PP], s[SP], megatron_order(order));
}

MegatronRanks expert_of(const Sizes& s, const std::vector<int>& order) {
  const int world = s[TP] * s[SP] * s[EP] * s[DP] * s[PP];
  return MegatronRanks(s[TP], s[EP], world / (s[TP] * s[EP] * s[PP]), s[PP], 1, megatron_order(order));
}

ProcessGrid grid_of(const Sizes& s, const std::vector<int>& order) {
  return ProcessGrid(s, our_order(order), s[TP] * s[SP] * s[EP] * s[DP] * s[PP]);
}

// ---- the tests -----------------------------------------------------------------------------

TEST(MegatronGroups, LiteralExamples) {
  // Megatron's docstring: 16 GPUs, tp 2, pp 4, default order -> dp [0,2],[1,3],...; our dp 2.
  const MegatronRanks m(2, 1, 2, 4, 1, "tp-cp-ep-dp-pp");
  EXPECT_EQ(m.get_ranks("dp"), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}, {8, 10}, {9, 11}, {12, 14}, {13, 15}}));
  EXPECT_EQ(m.get_ranks("pp"), (Groups{{0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14}, {3, 7, 11, 15}}));
  // generate_masked_orthogonal_rank_groups' own example: sizes [2, 3, 4], middle digit.
  EXPECT_EQ(masked_groups({2, 3, 4}, {false, true, false}).back(), (std::vector<int>{19, 21, 23}));
  // The sp > 1 difference at its smallest: tp 1, sp 2, ep 2, default order.
  const ProcessGrid g({1, 2, 2, 1, 1}, kDefaultOrder, 4);
  const MegatronRanks e(1, 2, 2, 1, 1, "tp-cp-ep-dp-pp");  // expert dp = 4 / (1*2*1) = 2
  EXPECT_EQ(g.groups(AxisSet{Axis::ep}), (Groups{{0, 2}, {1, 3}}));
  EXPECT_EQ(e.get_ranks("ep"), (Groups{{0, 1}, {2, 3}}));
  EXPECT_EQ(g.groups(AxisSet{Axis::sp, Axis::dp}), (Groups{{0, 1}, {2, 3}}));
  EXPECT_EQ(e.get_ranks("dp"), (Groups{{0, 2}, {1, 3}}));
  // The older literal expert order "tp-ep-dp-pp" is the same generator (cp is appended, size 1).
  const std::vector<Sizes> few = {{2, 1, 2, 2, 2}, {1, 1, 4, 2, 3}};
  for (const Sizes& s : few)
    for (const char* t : {"tp", "ep", "dp", "pp", "tp-ep", "tp-ep-pp"})
      EXPECT_EQ(MegatronRanks(s[TP], s[EP], s[DP], s[PP], 1, "tp-ep-dp-pp").get_ranks(t),
                expert_of(s, {TP, SP, EP, DP, PP}).get_ranks(t));
}

TEST(MegatronGroups, DenseEqualsDecoderGeneratorWhenEpAndDpAreNeighbours) {
  const std::vector<Sizes> layouts = all_layouts(32);
  int orders = 0;
  long compared = 0;
  for (const std::vector<int>& order : all_orders()) {
    if (!neighbours(order, EP, DP)) continue;
    ++orders;
    for (const Sizes& s : layouts) {
      const ProcessGrid grid = grid_of(s, order);
      const MegatronRanks meg = decoder_of(s, order);
      for (const Correspondence& c : kDense) {
        expect_same_groups(grid.groups(c.ours), meg.get_ranks(c.megatron), [&] {
          return describe(s, our_order(order)) + ": ours " + c.ours.name() + " vs decoder " + c.megatron;
        });
        if (HasFatalFailure()) return;
        ++compared;
      }
    }
  }
  EXPECT_EQ(orders, 48);
  EXPECT_EQ(compared, 48L * static_cast<long>(layouts.size()) * 15);
}

TEST(MegatronGroups, NoDecoderOrderMatchesWhenEpAndDpAreApart) {
  // All sizes 2: our {ep,dp} group of rank 0 is {0, a, b, a+b} (a, b the strides), an arithmetic
  // progression only when b = 2a or a = 2b, i.e. ep and dp neighbours; Megatron's dp is one
  // digit, so its groups always are. Try every Megatron order of its four tokens.
  const Sizes s{2, 2, 2, 2, 2};
  std::vector<std::string> tokens{"cp", "dp", "pp", "tp"};
  int orders = 0;
  for (const std::vector<int>& order : all_orders()) {
    if (neighbours(order, EP, DP)) continue;
    ++orders;
    const Groups ours = as_sets(grid_of(s, order).groups(AxisSet{Axis::ep, Axis::dp}));
    std::sort(tokens.begin(), tokens.end());
    do {
      const std::string m = tokens[0] + "-" + tokens[1] + "-" + tokens[2] + "-" + tokens[3];
      EXPECT_NE(as_sets(MegatronRanks(2, 1, 4, 2, 2, m).get_ranks("dp")), ours) << our_order(order) << " vs " << m;
    } while (std::next_permutation(tokens.begin(), tokens.end()));
  }
  EXPECT_EQ(orders, 72);
}

TEST(MegatronGroups, ExpertEqualsExpertGeneratorWhenSpIsOne) {
  int layouts = 0;
  for (const Sizes& s : all_layouts(32)) {
    if (s[SP] != 1) continue;
    ++layouts;
    for (const std::vector<int>& order : all_orders()) {  // every order: cp has size 1
      const ProcessGrid grid = grid_of(s, order);
      const MegatronRanks meg = expert_of(s, order);
      for (const Correspondence& c : kExpert) {
        expect_same_groups(grid.groups(c.ours), meg.get_ranks(c.megatron), [&] {
          return describe(s, our_order(order)) + ": ours " + c.ours.name() + " vs expert " + c.megatron;
        });
        if (HasFatalFailure()) return;
      }
    }
  }
  EXPECT_GT(layouts, 300);
}

TEST(MegatronGroups, SpDpIsExpertDpExactlyWhenSpAndDpAreNeighbours) {
  const std::vector<Sizes> layouts = all_layouts(32);
  int orders = 0, both = 0;
  for (const std::vector<int>& order : all_orders()) {
    if (!neighbours(order, SP, DP)) continue;
    ++orders;
    // dp between sp and ep: the dense equivalence (previous test) holds as well.
    if (neighbours(order, EP, DP)) ++both;
    for (const Sizes& s : layouts) {
      if (s[SP] == 1) continue;
      const ProcessGrid grid = grid_of(s, order);
      const MegatronRanks meg = expert_of(s, order);
      for (const Correspondence& c : kExpertSp) {
        expect_same_groups(grid.groups(c.ours), meg.get_ranks(c.megatron), [&] {
          return describe(s, our_order(order)) + ": ours " + c.ours.name() + " vs expert " + c.megatron;
        });
        if (HasFatalFailure()) return;
      }
    }
  }
  EXPECT_EQ(orders, 48);
  EXPECT_EQ(both, 12);
  // Apart (all sizes 2, as for ep and dp above): no Megatron order gives our {sp,dp} as expert dp.
  const Sizes s{2, 2, 2, 2, 2};
  std::vector<std::string> tokens{"dp", "ep", "pp", "tp"};
  int apart = 0;
  for (const std::vector<int>& order : all_orders()) {
    if (neighbours(order, SP, DP)) continue;
    ++apart;
    const Groups ours = as_sets(grid_of(s, order).groups(AxisSet{Axis::sp, Axis::dp}));
    std::sort(tokens.begin(), tokens.end());
    do {
      const std::string m = tokens[0] + "-" + tokens[1] + "-" + tokens[2] + "-" + tokens[3];
      EXPECT_NE(as_sets(MegatronRanks(2, 2, 4, 2, 1, m).get_ranks("dp")), ours) << our_order(order) << " vs " << m;
    } while (std::next_permutation(tokens.begin(), tokens.end()));
  }
  EXPECT_EQ(apart, 72);
}

TEST(MegatronGroups, DefaultOrderSpDpIsNotExpertDpWhenSpAndEpExceedOne) {
  const std::vector<int> order{TP, SP, EP, DP, PP};
  int layouts = 0;
  for (const Sizes& s : all_layouts(32)) {
    if (s[SP] == 1 || s[EP] == 1) continue;
    ++layouts;
    // Rank 0's {sp,dp} group holds the rank with sp coordinate 1 (combined index c = 1), its
    // expert dp group only multiples of ep in c: never the same.
    EXPECT_NE(as_sets(grid_of(s, order).groups(AxisSet{Axis::sp, Axis::dp})),
              as_sets(expert_of(s, order).get_ranks("dp")))
        << describe(s, our_order(order));
    EXPECT_NE(as_sets(grid_of(s, order).groups(AxisSet{Axis::ep})), as_sets(expert_of(s, order).get_ranks("ep")))
        << describe(s, our_order(order));
  }
  EXPECT_GT(layouts, 50);
}

TEST(MegatronGroups, ExpertGeneratorSplitsOurSpEpDpIndexWhenTheyAreNeighbours) {
  const std::vector<Sizes> layouts = all_layouts(32);
  const AxisSet sed{Axis::sp, Axis::ep, Axis::dp};
  int orders = 0;
  for (const std::vector<int>& order : all_orders()) {
    if (!contiguous(order, {SP, EP, DP})) continue;
    ++orders;
    const bool ep_first = std::find(order.begin(), order.end(), EP) < std::find(order.begin(), order.end(), DP);
    for (const Sizes& s : layouts) {
      const ProcessGrid grid = grid_of(s, order);
      const MegatronRanks meg = expert_of(s, order);
      const std::string what = describe(s, our_order(order));
      // Megatron's digit c of size sp*ep*dp is our {sp,ep,dp} group-local rank; "fast" is the
      // size of the part of c that comes first in the order (ep, or expert dp = sp*dp).
      const int fast = ep_first ? s[EP] : s[SP] * s[DP];
      Groups runs, every_nth;  // runs of `fast` consecutive members; members with equal c mod fast
      for (const std::vector<int>& g : grid.groups(sed)) {
        for (std::size_t i = 0; i < g.size(); i += fast) runs.emplace_back(g.begin() + i, g.begin() + i + fast);
        for (int j = 0; j < fast; ++j) {
          every_nth.emplace_back();
          for (std::size_t i = j; i < g.size(); i += fast) every_nth.back().push_back(g[i]);
        }
      }
      const Groups& ep_groups = ep_first ? runs : every_nth;
      const Groups& dp_groups = ep_first ? every_nth : runs;
      // (groups are compared with their members in order; the groups' own order differs)
      expect_same_groups(ep_groups, meg.get_ranks("ep"), [&] { return what + ": expert ep"; }, false);
      if (HasFatalFailure()) return;
      expect_same_groups(dp_groups, meg.get_ranks("dp"), [&] { return what + ": expert dp"; }, false);
      if (HasFatalFailure()) return;
      // The digits around it are untouched: tp, pp, and ep x dp as a whole.
      ASSERT_EQ(as_sets(grid.groups(sed)), as_sets(meg.get_ranks("ep-dp"))) << what;
      ASSERT_EQ(grid.groups(AxisSet{Axis::tp}), meg.get_ranks("tp")) << what;
      ASSERT_EQ(grid.groups(AxisSet{Axis::pp}), meg.get_ranks("pp")) << what;
    }
  }
  EXPECT_EQ(orders, 36);
}

}  // namespace
}  // namespace fivefold::grid_test
