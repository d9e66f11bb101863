// SPDX-License-Identifier: MIT
// Step 1: the process grid. A rank is a mixed-radix number whose digits are its coordinates,
// the leftmost axis of --order varying fastest. The S-group of a rank (S = a set of axes) is
// every rank that agrees with it on the axes not in S. 1a reproduces the 16-GPU example of
// Megatron-LM's documentation; 1b shows this run's grid; 1c builds a communicator for every one of
// the 31 sets of axes with split (color = group index, key = group-local rank) and checks, on
// every rank, that each communicator's members (all_gather of world ranks) are the group.
// Run: mpirun -np 8 build/cpu/bin/ch07_hybrid_parallel --step 1 --tp 2 --pp 2
//      build/cpu/bin/ch07_hybrid_parallel --step 1 --world 16 --tp 2 --pp 4      (on paper)
#include "backends/grid_comms.hpp"
#include "chapters/07_hybrid_parallel/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch07 {

namespace {

/// Groups flattened with -1 after each group, so a different grouping of the same ranks differs.
Tensor flatten(const std::vector<std::vector<int>>& groups) {
  std::vector<std::int32_t> v;
  for (const auto& g : groups) {
    v.insert(v.end(), g.begin(), g.end());
    v.push_back(-1);
  }
  return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())});
}

/// The sets whose axes all have size > 1 (the others repeat a smaller set's groups).
std::vector<AxisSet> nontrivial_sets(const ProcessGrid& grid) {
  std::vector<AxisSet> out;
  for (const AxisSet& s : AxisSet::all()) {
    bool all_big = true;
    for (Axis a : s.axes()) all_big = all_big && grid.size(a) > 1;
    if (all_big) out.push_back(s);
  }
  return out;
}

std::string coords_text(const ProcessGrid& grid, int rank) {
  std::string out;
  for (Axis a : active_axes(grid))
    out += (out.empty() ? "" : ", ") + std::string(axis_name(a)) + " " + std::to_string(grid.coord(rank, a));
  return "(" + (out.empty() ? std::string("the only rank") : out) + ")";
}

void show_grid(Context& ctx, const ProcessGrid& grid, int gpus_per_node) {
  const int n = grid.world_size();
  Table t{"Rank -> coordinates (" + grid.describe() + ")", {"rank", "tp", "sp", "ep", "dp", "pp", "node"}, {}};
  for (int r = 0; r < n && r < 64; ++r) {
    std::vector<std::string> row{std::to_string(r)};
    for (int c : grid.coords(r)) row.push_back(std::to_string(c));
    row.push_back(std::to_string(r / gpus_per_node));
    t.add(row);
  }
  ctx.narrator.table(t);
  if (n > 64) ctx.narrator.say("(first 64 of " + std::to_string(n) + " ranks)");
  if (n <= 64) {
    std::string fig = "The grid (rows: slowest axis of size > 1; [ ]: a group of the fastest):";
    for (const std::string& line : grid_figure(grid)) fig += "\n  " + line;
    ctx.narrator.say(fig);
  }
  Table g{"Groups of every set of axes of size > 1 (--print-groups lists all 31 sets)",
          {"axes", "ranks/group", "groups", "the groups"}, {}};
  for (const AxisSet& s : nontrivial_sets(grid))
    g.add({s.name(), std::to_string(grid.size(s)), std::to_string(grid.num_groups(s)), show_groups(grid.groups(s))});
  if (!g.rows.empty()) ctx.narrator.table(g);
}

}  // namespace

void step1_grid(Context& ctx, const Options& o) {
  // 1a. The example of Megatron-LM's initialize_model_parallel documentation.
  const ProcessGrid example({2, 1, 1, 2, 4}, kDefaultOrder, 16);
  ctx.narrator.say("1a. The 16-GPU example: tp 2, pp 4, dp 2, order tp-sp-ep-dp-pp, so\n"
                   "    rank = tp + 2*dp + 4*pp (strides 1, 2, 4: each axis's stride is the product of the\n"
                   "    sizes to its left). A group of axes S = the ranks that agree on every axis NOT in S.");
  std::string fig;
  for (const std::string& line : grid_figure(example)) fig += "  " + line + "\n";
  ctx.narrator.say(fig + "  tp groups: " + show_groups(example.groups(AxisSet{Axis::tp})) +
                   "\n  pp groups: " + show_groups(example.groups(AxisSet{Axis::pp})) +
                   "\n  dp groups: " + show_groups(example.groups(AxisSet{Axis::dp})) +
                   "\n  model-parallel (tp-pp) groups: " + show_groups(example.groups(AxisSet{Axis::tp, Axis::pp})));
  const std::vector<std::vector<int>> want_tp{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {14, 15}};
  const std::vector<std::vector<int>> want_pp{{0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14}, {3, 7, 11, 15}};
  const std::vector<std::vector<int>> want_dp{{0, 2}, {1, 3}, {4, 6}, {5, 7}, {8, 10}, {9, 11}, {12, 14}, {13, 15}};
  const std::vector<std::vector<int>> want_mp{{0, 1, 4, 5, 8, 9, 12, 13}, {2, 3, 6, 7, 10, 11, 14, 15}};
  CheckResult ex = compare("16-GPU example: tp groups as in Megatron-LM", flatten(example.groups(AxisSet{Axis::tp})),
                           flatten(want_tp), 0);
  merge(ex, compare("pp", flatten(example.groups(AxisSet{Axis::pp})), flatten(want_pp), 0));
  merge(ex, compare("dp", flatten(example.groups(AxisSet{Axis::dp})), flatten(want_dp), 0));
  merge(ex, compare("tp-pp", flatten(example.groups(AxisSet{Axis::tp, Axis::pp})), flatten(want_mp), 0));
  ex.name = "16-GPU example: tp, pp, dp, tp-pp groups as in Megatron-LM";
  ctx.check(ex);

  // 1b. This run's grid.
  const ProcessGrid grid = make_grid(o, grid_world(o, ctx.size()));
  ctx.narrator.say("1b. This run's grid: " + grid.describe() + ".");
  show_grid(ctx, grid, o.gpus_per_node);

  // 1c. The communicators, on the ranks of this job.
  if (grid.world_size() != ctx.size()) {
    ctx.narrator.say("1c. --world " + std::to_string(grid.world_size()) + " differs from the " +
                     std::to_string(ctx.size()) + " rank(s) of this job: the grid above is on paper. Run under\n"
                     "    mpirun -np " + std::to_string(grid.world_size()) + " to build its communicators.");
    return;
  }
  ctx.narrator.say("1c. One communicator per set of axes (31 sets), each from world.split(color = group index,\n"
                   "    key = group-local rank). Every rank all-gathers its world rank over each of them.");
  const GridComms comms(ctx.world, grid, AxisSet::all());
  const int me = ctx.rank();
  const Tensor mine = ctx.ops.upload(Tensor::from_vector(std::vector<std::int32_t>{me}, {1}));
  CheckResult all;
  std::vector<CheckResult> each;
  for (const AxisSet& s : AxisSet::all()) {
    Communicator& comm = comms.get(s);
    Tensor members = ctx.ops.empty({comm.size()}, DType::i32);
    comm.all_gather(mine, members);  // TUTORIAL: who is in my group, as the library sees it
    const std::vector<std::int32_t> host = members.to_ivector();
    const std::vector<int> got(host.begin(), host.end());
    const CheckResult r = compare("communicator " + s.name() + ": members = the printed group", flatten({got}),
                                  flatten({grid.group_of(me, s)}), 0);
    if (s == AxisSet::all().front()) all = r; else merge(all, r);
    bool all_big = true;
    for (Axis a : s.axes()) all_big = all_big && grid.size(a) > 1;
    if (!all_big) continue;
    each.push_back(r);
    ctx.comm(Context::entry(comm.name(), "all_gather", comm.counts(), 1, 4));
  }
  std::string mine_text = coords_text(grid, me);
  for (Axis a : active_axes(grid))
    mine_text += " " + std::string(axis_name(a)) + " " + show_group(grid.group_of(me, AxisSet{a}));
  ctx.say_ranks(mine_text);
  for (const CheckResult& r : each) ctx.check(r);
  all.name = "all 31 sets (size-1 axes too): communicator members = groups";
  ctx.check(all);
}

}  // namespace fivefold::ch07
