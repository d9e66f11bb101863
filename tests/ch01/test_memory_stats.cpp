// SPDX-License-Identifier: MIT
// Unit tests of the tensor allocator's byte counters (memory_stats, reset_peak), which chapter
// 01's step 6 compares with its memory formulas: allocations and frees move live bytes by
// exactly numel * 4, views and handles count nothing, the peak remembers the maximum.
#include <gtest/gtest.h>

#include "common/tensor.hpp"

namespace fivefold {
namespace {

std::int64_t live() { return memory_stats(Device::host).live_bytes; }

TEST(MemoryStats, AllocationAndFreeMoveLiveBytesExactly) {
  const std::int64_t base = live();
  const std::int64_t allocs = memory_stats(Device::host).allocations;
  {
    const Tensor a = Tensor::empty({3, 5});                // 60 bytes (the allocator rounds; we do not count it)
    EXPECT_EQ(live() - base, 60);
    const Tensor b = Tensor::zeros({7}, DType::i32);       // 28 bytes
    EXPECT_EQ(live() - base, 88);
    const Tensor c = Tensor::empty({0, 4});                // zero bytes, still defined
    EXPECT_EQ(live() - base, 88);
    EXPECT_EQ(memory_stats(Device::host).allocations - allocs, 3);
  }
  EXPECT_EQ(live(), base);  // every byte given back when the last handle goes
}

TEST(MemoryStats, ViewsAndHandlesShareTheirParentsBytes) {
  const std::int64_t base = live();
  Tensor a = Tensor::empty({4, 8});  // 128 bytes
  {
    const Tensor view = a.view({32});
    const Tensor rows = a.narrow(1, 2);
    const Tensor flat = a.flat(3, 5);
    const Tensor handle = a;  // NOLINT: a second handle on purpose
    EXPECT_EQ(live() - base, 128);
  }
  const Tensor copy = a.clone();  // a deep copy allocates
  EXPECT_EQ(live() - base, 256);
  a = Tensor();  // dropping a handle frees only when it was the last one
  EXPECT_EQ(live() - base, 128);
}

TEST(MemoryStats, PeakRemembersTheMaximumUntilReset) {
  reset_peak(Device::host);
  const std::int64_t base = live();
  EXPECT_EQ(memory_stats(Device::host).peak_bytes, base);
  {
    const Tensor big = Tensor::empty({1000});  // 4000 bytes, then freed
    const Tensor more = Tensor::empty({250});  // 1000 bytes
  }
  const Tensor small = Tensor::empty({10});   // 40 bytes
  EXPECT_EQ(live() - base, 40);
  EXPECT_EQ(memory_stats(Device::host).peak_bytes - base, 5000);
  reset_peak(Device::host);
  EXPECT_EQ(memory_stats(Device::host).peak_bytes - base, 40);
}

TEST(MemoryStats, DevicesAreCountedSeparately) {
  const MemoryStats cuda_before = memory_stats(Device::cuda);
  const Tensor a = Tensor::empty({100});
  EXPECT_EQ(memory_stats(Device::cuda).live_bytes, cuda_before.live_bytes);
}

}  // namespace
}  // namespace fivefold
