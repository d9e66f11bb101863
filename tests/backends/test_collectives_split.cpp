// SPDX-License-Identifier: MIT
// Communicator::split on the CPU backend: groups by parity and by a key that reverses the
// order; each sub-communicator has the right size and ranks, a collective inside it gives the
// group's serial result, and its calls are counted under its own name, not the parent's.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "collective_checks.hpp"

namespace fivefold::testing {
namespace {

using Split = CpuWorldTest;

TEST_F(Split, ByParity) {
  comm_->reset_counts();
  auto sub = comm_->split(me_ % 2, me_, "parity");
  // Members of my group, in world-rank order.
  std::vector<int> members;
  for (int r = me_ % 2; r < n_; r += 2) members.push_back(r);
  EXPECT_EQ(sub->size(), static_cast<int>(members.size()));
  EXPECT_EQ(sub->rank(), me_ / 2);
  EXPECT_EQ(sub->name(), "parity");
  EXPECT_EQ(sub->kind(), "mpi");

  for (std::int64_t len : kLengths) {
    std::vector<float> want(len, 0.0f);
    for (int r : members)
      for (std::int64_t i = 0; i < len; ++i) want[i] += value(r, i);
    Tensor buf = rank_tensor(me_, len);
    sub->reset_counts();
    sub->all_reduce(buf);
    expect_equal(buf, want, "all_reduce in the parity group, len " + std::to_string(len));
    expect_counts(*sub, {{"all_reduce", 1, len * 4}});
  }
  Tensor out = Tensor::empty({static_cast<std::int64_t>(members.size()) * 7});
  sub->all_gather(rank_tensor(me_, 7), out);
  std::vector<float> want;
  for (int r : members)
    for (int i = 0; i < 7; ++i) want.push_back(value(r, i));
  expect_equal(out, want, "all_gather in the parity group");
  expect_counts(*sub, {{"all_reduce", 1, 1000 * 4}, {"all_gather", 1, 7 * 4}});
  expect_counts(*comm_, {});  // split and the group's calls are not counted in the parent
}

TEST_F(Split, KeyReversesOrder) {
  auto sub = comm_->split(0, n_ - 1 - me_, "reversed");
  EXPECT_EQ(sub->size(), n_);
  EXPECT_EQ(sub->rank(), n_ - 1 - me_);
  EXPECT_EQ(sub->name(), "reversed");
  for (std::int64_t len : kLengths) {
    // Block j of the gather comes from the world rank whose sub rank is j: n-1-j.
    std::vector<float> want;
    for (int j = 0; j < n_; ++j)
      for (std::int64_t i = 0; i < len; ++i) want.push_back(value(n_ - 1 - j, i));
    Tensor out = Tensor::empty({n_ * len});
    sub->all_gather(rank_tensor(me_, len), out);
    expect_equal(out, want, "all_gather in reversed order, len " + std::to_string(len));
  }
  // Broadcast from sub root 0 = the last world rank.
  Tensor buf = rank_tensor(me_, 7);
  sub->broadcast(buf, 0);
  std::vector<float> want(7);
  for (int i = 0; i < 7; ++i) want[i] = value(n_ - 1, i);
  expect_equal(buf, want, "broadcast from sub-rank 0");
}

TEST_F(Split, EqualKeysKeepParentOrder) {
  auto sub = comm_->split(7, 0, "same-key");
  EXPECT_EQ(sub->size(), n_);
  EXPECT_EQ(sub->rank(), me_);
}

TEST_F(Split, SingletonGroupsAndNestedSplit) {
  auto solo = comm_->split(me_, 0, "solo");
  EXPECT_EQ(solo->size(), 1);
  EXPECT_EQ(solo->rank(), 0);
  Tensor buf = rank_tensor(me_, 7);
  solo->all_reduce(buf);
  std::vector<float> want(7);
  for (int i = 0; i < 7; ++i) want[i] = value(me_, i);
  expect_equal(buf, want, "all_reduce of a group of one");

  // Split the lower half of the world again by parity: groups of the sub-group.
  const int half = me_ < (n_ + 1) / 2 ? 0 : 1;
  auto h = comm_->split(half, me_, "half");
  auto q = h->split(h->rank() % 2, h->rank(), "quarter");
  std::vector<int> members;  // world ranks in my quarter
  for (int r = 0; r < n_; ++r) {
    const int rh = r < (n_ + 1) / 2 ? 0 : 1;
    const int hr = rh == 0 ? r : r - (n_ + 1) / 2;
    if (rh == half && hr % 2 == h->rank() % 2) members.push_back(r);
  }
  EXPECT_EQ(q->size(), static_cast<int>(members.size()));
  Tensor qb = rank_tensor(me_, 7);
  q->reset_counts();
  q->all_reduce(qb, ReduceOp::max);
  std::vector<float> qwant(7, -1e9f);
  for (int r : members)
    for (int i = 0; i < 7; ++i) qwant[i] = std::max(qwant[i], value(r, i));
  expect_equal(qb, qwant, "max in a group of a group");
  expect_counts(*q, {{"all_reduce", 1, 7 * 4}});
  expect_counts(*h, {});
}

}  // namespace
}  // namespace fivefold::testing
