// SPDX-License-Identifier: MIT
// ProcessGrid against the brute force of brute_force.hpp: coordinates, membership (pairs that
// agree off S), ordering (odometer tuples), for several layouts and every one of the 120 orders
// of two of them; the 16-GPU example literally; the --print-groups JSON (docs/reference.md);
// one-line UsageErrors
// for impossible layouts; and chapter 07's dp-fills default and node placement.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "brute_force.hpp"
#include "chapters/07_hybrid_parallel/layout.hpp"
#include "chapters/07_hybrid_parallel/placement.hpp"
#include "common/check.hpp"
#include "common/process_grid.hpp"

namespace fivefold::grid_test {
namespace {

int product(const Sizes& s) {
  int n = 1;
  for (int x : s) n *= x;
  return n;
}

/// Every check of one layout and order.
void expect_grid_matches(const Sizes& sizes, const std::string& order) {
  SCOPED_TRACE("sizes tp " + std::to_string(sizes[0]) + " sp " + std::to_string(sizes[1]) + " ep " +
               std::to_string(sizes[2]) + " dp " + std::to_string(sizes[3]) + " pp " + std::to_string(sizes[4]) +
               ", order " + order);
  const std::vector<int> ord = order_of(order);
  const int n = product(sizes);
  const ProcessGrid grid(sizes, order, n);
  ASSERT_EQ(grid.world_size(), n);
  const std::vector<Coord> coords = all_coords(sizes, ord);
  for (int r = 0; r < n; ++r) {
    ASSERT_EQ(grid.coords(r), coords[r]) << "coordinates of rank " << r;
    ASSERT_EQ(grid.rank_of(coords[r]), r);
  }
  const std::vector<AxisSet> sets = AxisSet::all();
  for (unsigned mask = 1; mask < 32; ++mask) {
    const AxisSet s = AxisSet::from_bits(mask);
    ASSERT_EQ(s.name(), set_name(mask));
    const std::vector<std::vector<int>> got = grid.groups(s);
    // Membership, as sets, by brute force over pairs.
    ASSERT_EQ(as_sets(got), membership(sizes, ord, mask)) << "members of the " << s.name() << " groups";
    // Ordering, as the contract words it.
    ASSERT_EQ(got, ordered_groups(sizes, ord, mask)) << "order of the " << s.name() << " groups";
    // Both orders are increasing global rank (members; first members of the groups).
    for (std::size_t g = 0; g < got.size(); ++g) {
      ASSERT_TRUE(std::is_sorted(got[g].begin(), got[g].end()));
      if (g > 0) {
        ASSERT_LT(got[g - 1].front(), got[g].front());
      }
    }
    // group_index / group_rank / group_of agree with the list (the split's color and key).
    for (std::size_t g = 0; g < got.size(); ++g)
      for (std::size_t i = 0; i < got[g].size(); ++i) {
        ASSERT_EQ(grid.group_index(got[g][i], s), static_cast<int>(g));
        ASSERT_EQ(grid.group_rank(got[g][i], s), static_cast<int>(i));
        ASSERT_EQ(grid.group_of(got[g][i], s), got[g]);
      }
  }
}

TEST(ProcessGrid, LayoutsAndOrdersMatchBruteForce) {
  const std::vector<Sizes> layouts = {{1, 1, 1, 1, 1}, {2, 1, 1, 2, 4}, {4, 1, 1, 1, 1}, {1, 1, 1, 1, 5},
                                      {2, 3, 1, 1, 2}, {3, 1, 2, 2, 1}, {2, 2, 2, 2, 1}, {1, 2, 1, 3, 2}};
  for (const Sizes& s : layouts)
    for (const char* order : {"tp-sp-ep-dp-pp", "tp-sp-ep-pp-dp", "pp-dp-ep-sp-tp", "dp-cp-tp-pp-ep"})
      expect_grid_matches(s, order);
}

TEST(ProcessGrid, EveryOrderMatchesBruteForce) {
  std::vector<int> perm{0, 1, 2, 3, 4};
  int orders = 0;
  do {
    std::string order;
    for (int a : perm) order += (order.empty() ? "" : "-") + std::string(kNames[a]);
    expect_grid_matches({2, 3, 1, 2, 2}, order);
    expect_grid_matches({2, 1, 2, 1, 3}, order);
    ++orders;
  } while (std::next_permutation(perm.begin(), perm.end()));
  EXPECT_EQ(orders, 120);
}

TEST(ProcessGrid, SixteenGpuExampleLiterally) {
  const ProcessGrid g({2, 1, 1, 2, 4}, "tp-sp-ep-dp-pp", 16);
  using G = std::vector<std::vector<int>>;
  EXPECT_EQ(g.groups(AxisSet{Axis::tp}), (G{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {14, 15}}));
  EXPECT_EQ(g.groups(AxisSet{Axis::pp}), (G{{0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14}, {3, 7, 11, 15}}));
  EXPECT_EQ(g.groups(AxisSet{Axis::dp}), (G{{0, 2}, {1, 3}, {4, 6}, {5, 7}, {8, 10}, {9, 11}, {12, 14}, {13, 15}}));
  EXPECT_EQ(g.groups(AxisSet::parse("pp-tp")), (G{{0, 1, 4, 5, 8, 9, 12, 13}, {2, 3, 6, 7, 10, 11, 14, 15}}));
  EXPECT_EQ(g.coords(13), (AxisArray{1, 0, 0, 0, 3}));
  EXPECT_EQ(g.stride(Axis::tp), 1);
  EXPECT_EQ(g.stride(Axis::dp), 2);
  EXPECT_EQ(g.stride(Axis::pp), 4);
}

TEST(AxisSet, NamesParsingAndTheThirtyOneSets) {
  EXPECT_EQ(AxisSet::parse("pp-tp"), (AxisSet{Axis::tp, Axis::pp}));
  EXPECT_EQ(AxisSet::parse("pp-tp").name(), "tp-pp");
  EXPECT_EQ(AxisSet::parse("cp"), AxisSet{Axis::sp});
  EXPECT_EQ(parse_axis("cp"), Axis::sp);
  const std::vector<AxisSet> all = AxisSet::all();
  const std::vector<unsigned> want = all_masks();
  ASSERT_EQ(all.size(), 31u);
  for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].bits(), want[i]) << i;
  EXPECT_EQ(all.front().name(), "tp");
  EXPECT_EQ(all[5].name(), "tp-sp");
  EXPECT_EQ(all.back().name(), "tp-sp-ep-dp-pp");
  EXPECT_THROW(AxisSet::parse("tp-xx"), UsageError);
  EXPECT_THROW(AxisSet::parse("sp-cp"), UsageError);
  EXPECT_THROW(AxisSet::parse(""), UsageError);
}

TEST(ProcessGrid, JsonHasAllThirtyOneSetsInOrder) {
  const Sizes sizes{2, 1, 1, 2, 2};
  const ProcessGrid grid(sizes, "tp-sp-ep-pp-dp", 8);
  const nlohmann::json j = nlohmann::json::parse(groups_json_text(grid));
  ASSERT_EQ(j.size(), 31u);
  const nlohmann::ordered_json oj = nlohmann::ordered_json::parse(groups_json_text(grid));
  std::vector<std::string> keys;
  for (const auto& item : oj.items()) keys.push_back(item.key());
  const std::vector<unsigned> masks = all_masks();
  for (std::size_t i = 0; i < masks.size(); ++i) {
    EXPECT_EQ(keys[i], set_name(masks[i]));
    EXPECT_EQ(j.at(set_name(masks[i])).get<Groups>(), ordered_groups(sizes, order_of("tp-sp-ep-pp-dp"), masks[i]));
  }
}

/// Runs @p fn, expects a UsageError whose one-line message contains every one of @p words.
template <typename Fn>
void expect_usage_error(Fn fn, const std::vector<std::string>& words) {
  try {
    fn();
    ADD_FAILURE() << "no UsageError";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const std::string& w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
  }
}

TEST(ProcessGrid, ImpossibleLayoutsAreOneLineUsageErrors) {
  const AxisArray ok{2, 1, 1, 2, 2};
  expect_usage_error([&] { (void)ProcessGrid(ok, kDefaultOrder, 16); }, {"= 8 ranks", "world has 16"});
  expect_usage_error([&] { (void)ProcessGrid(ok, "tp-sp-xx-dp-pp", 8); }, {"--order", "unknown axis 'xx'"});
  expect_usage_error([&] { (void)ProcessGrid(ok, "tp-tp-ep-dp-pp", 8); }, {"--order", "tp appears twice"});
  expect_usage_error([&] { (void)ProcessGrid(ok, "tp-sp-cp-dp-pp", 8); }, {"sp appears twice", "cp"});
  expect_usage_error([&] { (void)ProcessGrid(ok, "tp-dp-pp", 8); }, {"sp, ep missing"});
  expect_usage_error([&] { (void)ProcessGrid(ok, "", 8); }, {"unknown axis ''"});
  expect_usage_error([&] { (void)ProcessGrid({2, 0, 1, 2, 2}, kDefaultOrder, 0); }, {"sp size 0", "--sp"});
  expect_usage_error([&] { (void)ProcessGrid({2, 1, 1, -2, 2}, kDefaultOrder, 8); }, {"dp size -2", "--dp"});
  expect_usage_error([&] { (void)ProcessGrid({65536, 1, 1, 1, 65536}, kDefaultOrder, 8); }, {"world has 8"});
}

TEST(Chapter07Layout, DpFillsTheWorldAndErrorsNameTheFix) {
  ch07::Options o;
  ProcessGrid g = ch07::make_grid(o, 4);
  EXPECT_EQ(g.size(Axis::dp), 4);
  o.tp = 2;
  o.pp = 2;
  g = ch07::make_grid(o, 8);
  EXPECT_EQ(g.size(Axis::dp), 2);
  EXPECT_EQ(g.size(Axis::tp), 2);
  expect_usage_error([&] { ch07::make_grid(o, 6); }, {"does not divide", "6"});
  o.dp = 1;
  expect_usage_error([&] { ch07::make_grid(o, 8); }, {"= 4 ranks", "world has 8"});
  o.dp.reset();
  o.tp = 0;
  expect_usage_error([&] { ch07::make_grid(o, 8); }, {"tp size 0"});
}

TEST(Chapter07Placement, GroupsOnNodes) {
  const ProcessGrid a({2, 1, 1, 2, 4}, "tp-sp-ep-dp-pp", 16), b({2, 1, 1, 2, 4}, "tp-sp-ep-pp-dp", 16);
  // 4 GPUs per node: tp and dp groups are inside a node in a; pp spans all 4 nodes.
  EXPECT_TRUE(ch07::placement(a, AxisSet{Axis::tp}, 4).inside_node);
  EXPECT_TRUE(ch07::placement(a, AxisSet{Axis::dp}, 4).inside_node);
  EXPECT_EQ(ch07::placement(a, AxisSet{Axis::pp}, 4).max_nodes, 4);
  // In b the pp groups [0,2,4,6] span 2 nodes, dp groups [0,8] span 2 nodes.
  EXPECT_EQ(ch07::placement(b, AxisSet{Axis::pp}, 4).max_nodes, 2);
  EXPECT_EQ(ch07::placement(b, AxisSet{Axis::dp}, 4).max_nodes, 2);
  EXPECT_TRUE(ch07::placement(b, AxisSet{Axis::tp}, 4).inside_node);
  // TP traffic: 4 L/pp all-reduces of n_tok*C floats, ring factor 2(tp-1)/tp = 1.
  ModelConfig m;
  m.batch = 4, m.seq = 16, m.dim = 32, m.layers = 2;
  const std::vector<ch07::AxisTraffic> rows = ch07::traffic_per_step(a, m);
  ASSERT_EQ(rows.front().axis, Axis::tp);
  const double n_tok = 4.0 * 16 / 2;  // B*T/(dp*ep*sp)
  EXPECT_DOUBLE_EQ(rows.front().bytes, 4 * (2.0 / 4) * 1.0 * n_tok * 32 * 4);
  EXPECT_DOUBLE_EQ(rows.back().bytes, 2 * n_tok * 32 * 4);  // pp
}

TEST(Chapter07Placement, OffNodeBytesFollowThePattern) {
  // tp 4, pp 4, dp 2 on nodes of 8. Default order: pp groups [0,8,16,24] (every stage on its own
  // node), dp groups [0,4] inside a node. pp-before-dp: pp groups [0,4,8,12], dp groups [0,16].
  ModelConfig m;
  m.batch = 4, m.seq = 16, m.dim = 32, m.layers = 4;
  const ProcessGrid a({4, 1, 1, 2, 4}, "tp-sp-ep-dp-pp", 32), b({4, 1, 1, 2, 4}, "tp-sp-ep-pp-dp", 32);
  const std::vector<ch07::AxisTraffic> ra = ch07::traffic_per_step(a, m), rb = ch07::traffic_per_step(b, m);
  const ch07::AxisTraffic &pp_a = ra.back(), &pp_b = rb.back(), &dp_b = rb[3];
  ASSERT_EQ(pp_a.axis, Axis::pp);
  ASSERT_EQ(dp_b.axis, Axis::dp);
  // An interior stage sends both halves off-node in a; the first stage only its forward half.
  EXPECT_DOUBLE_EQ(ch07::cross_node_bytes(a, pp_a, 8, 8), pp_a.bytes);
  EXPECT_DOUBLE_EQ(ch07::cross_node_bytes(a, pp_a, 8, 0), pp_a.bytes / 2);
  EXPECT_DOUBLE_EQ(ch07::max_cross_node_bytes(a, ra, 8), pp_a.bytes);
  // In b: rank 4 (stage 1) sends forward to rank 8 on node 1, backward to rank 0 on node 0.
  EXPECT_DOUBLE_EQ(ch07::cross_node_bytes(b, pp_b, 8, 4), pp_b.bytes / 2);
  EXPECT_DOUBLE_EQ(ch07::cross_node_bytes(b, pp_b, 8, 0), 0.0);
  EXPECT_DOUBLE_EQ(ch07::cross_node_bytes(b, dp_b, 8, 4), dp_b.bytes);  // ring [4,20]: successor off-node
  EXPECT_DOUBLE_EQ(ch07::cross_node_bytes(b, rb.front(), 8, 4), 0.0);   // tp [4..7] inside
  EXPECT_DOUBLE_EQ(ch07::max_cross_node_bytes(b, rb, 8), pp_b.bytes / 2 + dp_b.bytes);
  // All-to-all: ep 4 over nodes of 2: two of the three peers are off-node.
  ModelConfig moe = m;
  moe.experts = 4;
  const ProcessGrid e({1, 1, 4, 1, 1}, "tp-sp-ep-dp-pp", 4);
  const ch07::AxisTraffic ep = ch07::traffic_per_step(e, moe)[2];
  ASSERT_EQ(ep.axis, Axis::ep);
  ASSERT_GT(ep.bytes, 0);
  EXPECT_DOUBLE_EQ(ch07::cross_node_bytes(e, ep, 2, 0), ep.bytes * 2 / 3);
}

}  // namespace
}  // namespace fivefold::grid_test
