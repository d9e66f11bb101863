// SPDX-License-Identifier: MIT
// GridComms on the MPI world: for every layout of the world's ranks over the five axes (all
// ordered factorisations of n) and two orders, each of the 31 communicators has the size and
// rank ProcessGrid promises, and its members (all_gather of world ranks) are exactly the group
// printed by --print-groups (groups_json_text, parsed back) and the brute-force group.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "backends/grid_comms.hpp"
#include "brute_force.hpp"
#include "common/check.hpp"

namespace fivefold::grid_test {
namespace {

/// Every (tp, sp, ep, dp, pp) with product n.
std::vector<Sizes> layouts_of(int n) {
  std::vector<Sizes> out;
  for (int tp = 1; tp <= n; ++tp)
    for (int sp = 1; tp * sp <= n; ++sp)
      for (int ep = 1; tp * sp * ep <= n; ++ep)
        for (int dp = 1; tp * sp * ep * dp <= n; ++dp)
          if (n % (tp * sp * ep * dp) == 0) out.push_back({tp, sp, ep, dp, n / (tp * sp * ep * dp)});
  return out;
}

class GridCommsTest : public ::testing::Test {
 protected:
  void SetUp() override { backend_ = make_backend("cpu"); }
  Backend backend_;
};

TEST_F(GridCommsTest, MembersAreThePrintedGroups) {
  Communicator& world = *backend_.world;
  const int n = world.size(), me = world.rank();
  const std::vector<Sizes> layouts = layouts_of(n);
  ASSERT_FALSE(layouts.empty());
  for (const Sizes& sizes : layouts)
    for (const std::string order : {"tp-sp-ep-dp-pp", "pp-ep-tp-dp-cp"}) {
      const ProcessGrid grid(sizes, order, n);
      SCOPED_TRACE(grid.describe());
      const nlohmann::json printed = nlohmann::json::parse(groups_json_text(grid));
      const GridComms comms(world, grid, AxisSet::all());
      const Tensor mine = Tensor::from_vector(std::vector<std::int32_t>{me}, {1});
      for (const AxisSet& s : AxisSet::all()) {
        Communicator& comm = comms.get(s);
        EXPECT_EQ(comm.name(), s.name());
        ASSERT_EQ(comm.size(), grid.size(s));
        EXPECT_EQ(comm.rank(), grid.group_rank(me, s));
        Tensor all = Tensor::empty({comm.size()}, DType::i32);
        comm.all_gather(mine, all);
        const std::vector<std::int32_t> got32 = all.to_ivector();
        const std::vector<int> got(got32.begin(), got32.end());
        // The printed group of my set: entry group_index of the set's list.
        const std::vector<int> want = printed.at(s.name()).at(grid.group_index(me, s)).get<std::vector<int>>();
        EXPECT_EQ(got, want) << "communicator " << s.name() << " on world rank " << me;
        const Groups brute = ordered_groups(sizes, order_of(order), s.bits());
        EXPECT_EQ(got, brute.at(grid.group_index(me, s))) << s.name();
        EXPECT_EQ(comm.counts().at("all_gather").calls, 1);
        EXPECT_EQ(comm.counts().at("all_gather").payload_bytes, 4);
      }
      EXPECT_EQ(comms.get("cp").name(), "sp");
      EXPECT_EQ(&comms.get("pp-tp"), &comms.get(AxisSet{Axis::tp, Axis::pp}));
    }
}

TEST_F(GridCommsTest, SomeSetsOnlyAndErrors) {
  Communicator& world = *backend_.world;
  const int n = world.size();
  const ProcessGrid grid({1, 1, 1, n, 1}, "tp-sp-ep-dp-pp", n);
  const GridComms comms(world, grid, {AxisSet{Axis::dp}, AxisSet{Axis::dp}, AxisSet{Axis::tp, Axis::pp}});
  EXPECT_EQ(comms.sets().size(), 2u);  // asked twice: one communicator
  EXPECT_EQ(comms.get("dp").size(), n);
  EXPECT_EQ(comms.get("tp-pp").size(), 1);
  EXPECT_FALSE(comms.has(AxisSet{Axis::tp}));
  EXPECT_THROW(comms.get("tp"), Error);
  // A grid of another size is refused on every rank alike, before any split.
  const ProcessGrid bigger({1, 1, 1, n + 1, 1}, "tp-sp-ep-dp-pp", n + 1);
  EXPECT_THROW(GridComms(world, bigger, single_axis_sets()), UsageError);
}

}  // namespace
}  // namespace fivefold::grid_test
