// SPDX-License-Identifier: MIT
/// @file collective_checks.hpp
/// @brief Shared pieces of the Communicator tests: every rank's deterministic input (so each
/// rank can compute the serial answer from everyone's data), and checks of the counters.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "backends/backend.hpp"

namespace fivefold::testing {

/// The lengths every collective is tried with: empty, one, not divisible by anything, large.
inline const std::vector<std::int64_t> kLengths = {0, 1, 7, 1000};

/// Element @p i of rank @p r's input: a small integer, so fp32 sums are exact in any order;
/// differs between ranks in both directions so max and sum both depend on every rank.
inline float value(int r, std::int64_t i) {
  return static_cast<float>(((r + 1) * 37 + i * 11 + (r * i) % 13) % 101 - 50);
}

/// int32 element @p i of rank @p r's input (distinct for every (r, i)).
inline std::int32_t ivalue(int r, std::int64_t i) { return static_cast<std::int32_t>(r * 100000 + i * 3 + 1); }

/// Host f32 tensor [n] with element i = value(r, offset + i).
inline Tensor rank_tensor(int r, std::int64_t n, std::int64_t offset = 0) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[i] = value(r, offset + i);
  return Tensor::from_vector(v, {n});
}

/// Host i32 tensor [n] with element i = ivalue(r, i).
inline Tensor rank_itensor(int r, std::int64_t n) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[i] = ivalue(r, i);
  return Tensor::from_vector(v, {n});
}

/// Elements offset .. offset+len-1 of the serial reduction (sum or max) of every rank's
/// rank_tensor over @p n ranks: what an all-reduce (offset 0) or a rank's reduce-scatter block
/// must hold.
inline std::vector<float> reduced(int n, std::int64_t len, ReduceOp op, std::int64_t offset = 0) {
  std::vector<float> want(static_cast<std::size_t>(len));
  for (std::int64_t i = 0; i < len; ++i) {
    float acc = value(0, offset + i);
    for (int r = 1; r < n; ++r)
      acc = op == ReduceOp::sum ? acc + value(r, offset + i) : std::max(acc, value(r, offset + i));
    want[i] = acc;
  }
  return want;
}

/// A test on the CPU backend's world: this rank, the world size, its ring neighbours.
class CpuWorldTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = make_backend("cpu");
    comm_ = backend_.world.get();
    me_ = comm_->rank();
    n_ = comm_->size();
    right_ = (me_ + 1) % n_;
    left_ = (me_ + n_ - 1) % n_;
  }
  Backend backend_;
  Communicator* comm_ = nullptr;
  int me_ = 0, n_ = 1, right_ = 0, left_ = 0;
};

/// One expected counter entry.
struct ExpectedCount {
  std::string op;             ///< operation name as counted
  std::int64_t calls;         ///< expected calls
  std::int64_t payload_bytes; ///< expected payload bytes
};

/// Checks that @p comm counted exactly the entries of @p want (nothing else).
inline void expect_counts(const Communicator& comm, std::initializer_list<ExpectedCount> want) {
  const CommCounts& got = comm.counts();
  EXPECT_EQ(got.size(), want.size()) << "group " << comm.name() << " counted other ops";
  for (const auto& w : want) {
    auto it = got.find(w.op);
    if (it == got.end()) {
      ADD_FAILURE() << "group " << comm.name() << ": op " << w.op << " not counted";
      continue;
    }
    EXPECT_EQ(it->second.calls, w.calls) << comm.name() << " " << w.op << " calls";
    EXPECT_EQ(it->second.payload_bytes, w.payload_bytes) << comm.name() << " " << w.op << " bytes";
  }
}

/// Checks that @p fn throws fivefold::Error whose message contains every one of @p parts.
inline void expect_error(const std::function<void()>& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "expected fivefold::Error, nothing was thrown";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message '" << msg << "' lacks '" << p << "'";
  }
}

/// Element-by-element equality of an f32 tensor with @p want (exact: inputs are integers).
inline void expect_equal(const Tensor& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.numel(), static_cast<std::int64_t>(want.size())) << what;
  int bad = 0;
  for (std::size_t i = 0; i < want.size() && bad < 5; ++i) {
    if (got.at<float>(static_cast<std::int64_t>(i)) != want[i]) {
      ++bad;
      ADD_FAILURE() << what << ": element " << i << " is " << got.at<float>(static_cast<std::int64_t>(i))
                    << ", serial gives " << want[i];
    }
  }
}

/// Element-by-element equality of an i32 tensor with @p want.
inline void expect_iequal(const Tensor& got, const std::vector<std::int32_t>& want, const std::string& what) {
  ASSERT_EQ(got.numel(), static_cast<std::int64_t>(want.size())) << what;
  EXPECT_EQ(got.to_ivector(), want) << what;
}

}  // namespace fivefold::testing
