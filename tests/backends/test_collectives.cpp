// SPDX-License-Identifier: MIT
// The collectives of the CPU backend's world communicator (all_reduce, all_gather,
// reduce_scatter, all_to_all(v), broadcast) against a serial computation: every rank builds
// every other rank's input from value(rank, index), computes the answer alone, and compares.
// After each call the counters must hold exactly that call and the payload of the table in
// backends/communicator.hpp. Lengths 0, 1, 7 and 1000; world sizes 1 to 4 (see CMakeLists.txt).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "collective_checks.hpp"

namespace fivefold::testing {
namespace {

using Collectives = CpuWorldTest;

TEST_F(Collectives, AllReduceSumAndMax) {
  for (std::int64_t len : kLengths) {
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::max}) {
      const std::vector<float> want = reduced(n_, len, op);
      Tensor buf = rank_tensor(me_, len);
      comm_->reset_counts();
      comm_->all_reduce(buf, op);
      const std::string what = std::string(op == ReduceOp::sum ? "sum" : "max") + " len " + std::to_string(len);
      expect_equal(buf, want, "all_reduce " + what);
      expect_counts(*comm_, {{"all_reduce", 1, len * 4}});
    }
  }
}

TEST_F(Collectives, AllGather) {
  for (std::int64_t len : kLengths) {
    std::vector<float> want;
    for (int r = 0; r < n_; ++r)
      for (std::int64_t i = 0; i < len; ++i) want.push_back(value(r, i));
    Tensor out = Tensor::empty({n_ * len});
    comm_->reset_counts();
    comm_->all_gather(rank_tensor(me_, len), out);
    expect_equal(out, want, "all_gather len " + std::to_string(len));
    expect_counts(*comm_, {{"all_gather", 1, len * 4}});
  }
}

TEST_F(Collectives, AllGatherInt32) {
  for (std::int64_t len : kLengths) {
    std::vector<std::int32_t> want;
    for (int r = 0; r < n_; ++r)
      for (std::int64_t i = 0; i < len; ++i) want.push_back(ivalue(r, i));
    Tensor out = Tensor::empty({n_, len}, DType::i32);  // any shape with n*len elements
    comm_->reset_counts();
    comm_->all_gather(rank_itensor(me_, len), out);
    expect_iequal(out, want, "i32 all_gather len " + std::to_string(len));
    expect_counts(*comm_, {{"all_gather", 1, len * 4}});
  }
}

TEST_F(Collectives, ReduceScatterSumAndMax) {
  for (std::int64_t len : kLengths) {  // len = the block each rank keeps
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::max}) {
      const std::vector<float> want = reduced(n_, len, op, me_ * len);  // this rank's block of the full buffer
      Tensor out = Tensor::empty({len});
      comm_->reset_counts();
      comm_->reduce_scatter(rank_tensor(me_, n_ * len), out, op);
      expect_equal(out, want, "reduce_scatter len " + std::to_string(len));
      expect_counts(*comm_, {{"reduce_scatter", 1, n_ * len * 4}});
    }
  }
}

TEST_F(Collectives, AllToAll) {
  for (std::int64_t len : kLengths) {  // len = elements per block
    // Block i of my output is block me of rank i's input.
    std::vector<float> want;
    for (int r = 0; r < n_; ++r)
      for (std::int64_t k = 0; k < len; ++k) want.push_back(value(r, me_ * len + k));
    Tensor out = Tensor::empty({n_ * len});
    comm_->reset_counts();
    comm_->all_to_all(rank_tensor(me_, n_ * len), out);
    expect_equal(out, want, "all_to_all len " + std::to_string(len));
    expect_counts(*comm_, {{"all_to_all", 1, n_ * len * 4}});
  }
}

TEST_F(Collectives, AllToAllInt32) {
  for (std::int64_t len : kLengths) {
    std::vector<std::int32_t> want;
    for (int r = 0; r < n_; ++r)
      for (std::int64_t k = 0; k < len; ++k) want.push_back(ivalue(r, me_ * len + k));
    Tensor out = Tensor::empty({n_ * len}, DType::i32);
    comm_->reset_counts();
    comm_->all_to_all(rank_itensor(me_, n_ * len), out);
    expect_iequal(out, want, "i32 all_to_all len " + std::to_string(len));
    expect_counts(*comm_, {{"all_to_all", 1, n_ * len * 4}});
  }
}

// Elements rank s sends to rank d in pattern p: uneven, with zeros (p 0), all zero (p 1), large (p 2).
std::int64_t vcount(int p, int s, int d) {
  if (p == 0) return (s + 2 * d) % 3 == 0 ? 0 : s + 2 * d + 1;
  if (p == 1) return 0;
  return 500 + 7 * s + d;
}

TEST_F(Collectives, AllToAllvUnevenAndZeroCounts) {
  for (int p = 0; p < 3; ++p) {
    std::vector<std::int64_t> send(n_), recv(n_);
    std::int64_t s_total = 0, r_total = 0;
    for (int j = 0; j < n_; ++j) {
      send[j] = vcount(p, me_, j);
      recv[j] = vcount(p, j, me_);
      s_total += send[j];
      r_total += recv[j];
    }
    // Serial answer: block i of my output = rank i's block for me, at its offset in rank i's input.
    std::vector<float> want;
    for (int i = 0; i < n_; ++i) {
      std::int64_t off = 0;
      for (int j = 0; j < me_; ++j) off += vcount(p, i, j);
      for (std::int64_t k = 0; k < vcount(p, i, me_); ++k) want.push_back(value(i, off + k));
    }
    Tensor out = Tensor::empty({r_total});
    comm_->reset_counts();
    comm_->all_to_allv(rank_tensor(me_, s_total), send, out, recv);
    expect_equal(out, want, "all_to_allv pattern " + std::to_string(p));
    expect_counts(*comm_, {{"all_to_allv", 1, s_total * 4}});
  }
}

TEST_F(Collectives, AllToAllvCountsMayLeaveSlack) {
  // Buffers larger than the counts (capacity-padded expert buffers): the tail is untouched.
  std::vector<std::int64_t> counts(n_, 2);
  Tensor out = Tensor::empty({2 * n_ + 3});
  for (std::int64_t i = 0; i < out.numel(); ++i) out.at<float>(i) = -1000.0f;
  comm_->reset_counts();
  comm_->all_to_allv(rank_tensor(me_, 2 * n_ + 5), counts, out, counts);
  std::vector<float> want;
  for (int i = 0; i < n_; ++i)
    for (int k = 0; k < 2; ++k) want.push_back(value(i, 2 * me_ + k));
  for (int k = 0; k < 3; ++k) want.push_back(-1000.0f);
  expect_equal(out, want, "all_to_allv with slack");
  expect_counts(*comm_, {{"all_to_allv", 1, 2 * n_ * 4}});
}

TEST_F(Collectives, BroadcastFromEveryRoot) {
  for (std::int64_t len : kLengths) {
    for (int root = 0; root < n_; ++root) {
      std::vector<float> want(len);
      for (std::int64_t i = 0; i < len; ++i) want[i] = value(root, i);
      Tensor buf = rank_tensor(me_, len);
      comm_->reset_counts();
      comm_->broadcast(buf, root);
      expect_equal(buf, want, "broadcast root " + std::to_string(root) + " len " + std::to_string(len));
      expect_counts(*comm_, {{"broadcast", 1, len * 4}});

      std::vector<std::int32_t> iwant(len);
      for (std::int64_t i = 0; i < len; ++i) iwant[i] = ivalue(root, i);
      Tensor ibuf = rank_itensor(me_, len);
      comm_->broadcast(ibuf, root);
      expect_iequal(ibuf, iwant, "i32 broadcast root " + std::to_string(root));
    }
  }
}

TEST_F(Collectives, CountsAccumulateOverCalls) {
  comm_->reset_counts();
  Tensor a = rank_tensor(me_, 7), b = rank_tensor(me_, 1000);
  comm_->all_reduce(a);
  comm_->all_reduce(b, ReduceOp::max);
  comm_->broadcast(a, 0);
  expect_counts(*comm_, {{"all_reduce", 2, (7 + 1000) * 4}, {"broadcast", 1, 7 * 4}});
  comm_->reset_counts();
  expect_counts(*comm_, {});
}

TEST_F(Collectives, SetCountingFalseSuppresses) {
  comm_->reset_counts();
  EXPECT_TRUE(comm_->counting());
  comm_->set_counting(false);
  EXPECT_FALSE(comm_->counting());
  Tensor a = rank_tensor(me_, 7);
  Tensor out = Tensor::empty({7 * n_});
  comm_->all_reduce(a);
  comm_->all_gather(a, out);
  comm_->broadcast(a, n_ - 1);
  comm_->barrier();
  expect_counts(*comm_, {});
  comm_->set_counting(true);
  comm_->all_reduce(a);
  expect_counts(*comm_, {{"all_reduce", 1, 7 * 4}});
}

}  // namespace
}  // namespace fivefold::testing
