// SPDX-License-Identifier: MIT
// Point-to-point and non-blocking calls of the CPU backend's communicator (send/recv,
// sendrecv, isend/irecv, iall_reduce, barrier) around a ring, each checked against the data
// the neighbour must have sent and against the counters; then the uncounted bookkeeping
// helpers of backends/runtime.hpp and the errors raised for mismatched sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "backends/runtime.hpp"
#include "collective_checks.hpp"

namespace fivefold::testing {
namespace {

using PointToPoint = CpuWorldTest;

TEST_F(PointToPoint, SendRecvRing) {
  if (n_ == 1) GTEST_SKIP() << "a blocking send to oneself may deadlock; the ring needs 2+ ranks";
  for (std::int64_t len : kLengths) {
    Tensor got = Tensor::empty({len});
    comm_->reset_counts();
    // Even ranks send first, odd ranks receive first: no cycle of blocked sends.
    if (me_ % 2 == 0) {
      comm_->send(rank_tensor(me_, len), right_, 3);
      comm_->recv(got, left_, 3);
    } else {
      comm_->recv(got, left_, 3);
      comm_->send(rank_tensor(me_, len), right_, 3);
    }
    std::vector<float> want(len);
    for (std::int64_t i = 0; i < len; ++i) want[i] = value(left_, i);
    expect_equal(got, want, "recv from left, len " + std::to_string(len));
    expect_counts(*comm_, {{"send", 1, len * 4}, {"recv", 1, len * 4}});
  }
}

TEST_F(PointToPoint, SendRecvRingBothDirections) {
  for (std::int64_t len : kLengths) {
    for (int dir : {+1, -1}) {
      const int dst = dir > 0 ? right_ : left_, src = dir > 0 ? left_ : right_;
      Tensor got = Tensor::empty({len});
      comm_->reset_counts();
      comm_->sendrecv(rank_tensor(me_, len), dst, got, src, 5);
      std::vector<float> want(len);
      for (std::int64_t i = 0; i < len; ++i) want[i] = value(src, i);
      expect_equal(got, want, "sendrecv dir " + std::to_string(dir) + " len " + std::to_string(len));
      expect_counts(*comm_, {{"sendrecv", 1, len * 4}});
    }
  }
}

TEST_F(PointToPoint, SendRecvUnevenSizesCountsTheSentBuffer) {
  // Rank r sends r + 1 elements to the right; it receives left + 1 from the left.
  Tensor got = Tensor::empty({left_ + 1});
  comm_->reset_counts();
  comm_->sendrecv(rank_tensor(me_, me_ + 1), right_, got, left_);
  std::vector<float> want(left_ + 1);
  for (int i = 0; i <= left_; ++i) want[i] = value(left_, i);
  expect_equal(got, want, "uneven sendrecv");
  expect_counts(*comm_, {{"sendrecv", 1, (me_ + 1) * 4}});
}

TEST_F(PointToPoint, IsendIrecvRing) {
  for (std::int64_t len : kLengths) {
    Tensor mine = rank_tensor(me_, len);
    Tensor got = Tensor::empty({len});
    comm_->reset_counts();
    auto rr = comm_->irecv(got, left_, 9);  // posted first; with one rank left_ == me
    auto sr = comm_->isend(mine, right_, 9);
    sr->wait();
    while (!rr->test()) {
    }
    rr->wait();  // waiting again on a completed request is a no-op
    std::vector<float> want(len);
    for (std::int64_t i = 0; i < len; ++i) want[i] = value(left_, i);
    expect_equal(got, want, "irecv from left, len " + std::to_string(len));
    expect_counts(*comm_, {{"isend", 1, len * 4}, {"irecv", 1, len * 4}});
  }
}

TEST_F(PointToPoint, RequestDestructorWaits) {
  Tensor got = Tensor::empty({7});
  {
    auto rr = comm_->irecv(got, left_, 11);
    auto sr = comm_->isend(rank_tensor(me_, 7), right_, 11);
  }  // both destroyed without wait(): the destructors complete them
  std::vector<float> want(7);
  for (int i = 0; i < 7; ++i) want[i] = value(left_, i);
  expect_equal(got, want, "irecv completed by the destructor");
}

TEST_F(PointToPoint, IallReduce) {
  for (std::int64_t len : kLengths) {
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::max}) {
      const std::vector<float> want = reduced(n_, len, op);
      Tensor buf = rank_tensor(me_, len);
      comm_->reset_counts();
      auto req = comm_->iall_reduce(buf, op);
      req->wait();
      expect_equal(buf, want, "iall_reduce len " + std::to_string(len));
      expect_counts(*comm_, {{"iall_reduce", 1, len * 4}});
    }
  }
}

TEST_F(PointToPoint, Barrier) {
  comm_->reset_counts();
  comm_->barrier();
  comm_->barrier();
  expect_counts(*comm_, {{"barrier", 2, 0}});
}

TEST_F(PointToPoint, AllGatherStringsIsUncounted) {
  for (bool counting : {true, false}) {
    comm_->reset_counts();
    comm_->set_counting(counting);
    // Rank 0 sends the empty string; lengths differ and are not multiples of 4.
    std::string mine;
    for (int k = 0; k < me_ * 3; ++k) mine += static_cast<char>('a' + (me_ + k) % 26);
    const std::vector<std::string> all = all_gather_strings(*comm_, mine);
    ASSERT_EQ(static_cast<int>(all.size()), n_);
    for (int r = 0; r < n_; ++r) {
      std::string want;
      for (int k = 0; k < r * 3; ++k) want += static_cast<char>('a' + (r + k) % 26);
      EXPECT_EQ(all[r], want) << "string of rank " << r;
    }
    expect_counts(*comm_, {});
    EXPECT_EQ(comm_->counting(), counting) << "all_gather_strings must restore the counting flag";
  }
  comm_->set_counting(true);
}

TEST_F(PointToPoint, AllRanksTrueIsUncounted) {
  comm_->reset_counts();
  EXPECT_TRUE(all_ranks_true(*comm_, true));
  EXPECT_FALSE(all_ranks_true(*comm_, me_ != n_ - 1)) << "false on the last rank only";
  EXPECT_FALSE(all_ranks_true(*comm_, false));
  expect_counts(*comm_, {});
  EXPECT_TRUE(comm_->counting());
}

// Every rank passes the same bad arguments, so every rank throws before any communication.
TEST_F(PointToPoint, MismatchedSizesThrowNamingTheSizes) {
  Tensor in5 = Tensor::zeros({5}), out = Tensor::zeros({5 * n_ + 1});
  expect_error([&] { comm_->all_gather(in5, out); }, {"all_gather", in5.str(), out.str()});
  Tensor rs_out = Tensor::zeros({3});
  expect_error([&] { comm_->reduce_scatter(in5, rs_out); }, {"reduce_scatter", in5.str(), rs_out.str()});
  Tensor a2a_out = Tensor::zeros({4 * n_});
  Tensor a2a_in = Tensor::zeros({4 * n_ + 1});
  expect_error([&] { comm_->all_to_all(a2a_in, a2a_out); }, {"all_to_all", a2a_in.str(), a2a_out.str()});
  Tensor f_in = Tensor::zeros({2 * n_}), i_out = Tensor::zeros({2 * n_}, DType::i32);
  expect_error([&] { comm_->all_to_all(f_in, i_out); }, {"all_to_all", "i32"});
  std::vector<std::int64_t> short_counts(n_ + 1, 0), ones(n_, 1), big(n_, 6);
  expect_error([&] { comm_->all_to_allv(in5, short_counts, out, ones); },
               {"all_to_allv", std::to_string(n_)});
  expect_error([&] { comm_->all_to_allv(in5, big, out, ones); }, {"all_to_allv", std::to_string(6 * n_), in5.str()});
  std::vector<std::int64_t> negative(n_, 0);
  negative[0] = -1;
  expect_error([&] { comm_->all_to_allv(in5, negative, out, ones); }, {"all_to_allv", "-1"});
  expect_error([&] { comm_->broadcast(in5, n_); }, {"broadcast", "root " + std::to_string(n_)});
  expect_error([&] { comm_->broadcast(in5, -1); }, {"broadcast", "root -1"});
  expect_error([&] { comm_->send(in5, n_); }, {"send", "peer " + std::to_string(n_)});
  expect_error([&] { comm_->sendrecv(in5, 0, rs_out, n_); }, {"sendrecv", "peer " + std::to_string(n_)});
  Tensor ibuf = Tensor::zeros({4}, DType::i32);
  expect_error([&] { comm_->all_reduce(ibuf); }, {"all_reduce", ibuf.str()});
  expect_error([&] { comm_->iall_reduce(ibuf); }, {"iall_reduce", ibuf.str()});
  Tensor irs = Tensor::zeros({n_}, DType::i32), irs_out = Tensor::zeros({1}, DType::i32);
  expect_error([&] { comm_->reduce_scatter(irs, irs_out); }, {"reduce_scatter", irs.str()});
  expect_error([&] { comm_->split(-1, 0, "bad"); }, {"split", "-1"});
  comm_->barrier();  // every rank is still in step after the throws
}

}  // namespace
}  // namespace fivefold::testing
