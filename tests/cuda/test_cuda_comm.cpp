// SPDX-License-Identifier: MIT
// Every collective of the CUDA backend's communicator, for both transports (NCCL and MPI staged
// in host memory), against the serial computation of what each rank must hold. Values are
// small multiples of 0.5, so every sum is exact in fp32 whatever order a transport adds in,
// and results can be compared exactly.
#include <algorithm>
#include <limits>

#include "cuda_test_support.hpp"

namespace fivefold::test {
namespace {

// Element i of rank r's buffer: distinct per rank, exact in fp32, negative on odd ranks so
// that max differs from "the last rank".
float val(int r, std::int64_t i) {
  const float v = static_cast<float>((r + 1) * 100 + i % 97) * 0.5f;
  return r % 2 ? -v : v;
}

class CudaCommTest : public ::testing::TestWithParam<CudaTransport> {
 protected:
  void SetUp() override {
    FIVEFOLD_REQUIRE_GPU();
    std::string why;
    backend_ = cuda_backend(GetParam(), &why);
    if (backend_ == nullptr) GTEST_SKIP() << transport_name(GetParam()) << " transport not possible here: " << why;
    comm().set_counting(true);
    comm().reset_counts();
  }
  Communicator& comm() { return *backend_->world; }
  Ops& ops() { return *backend_->ops; }
  int rank() { return comm().rank(); }
  int size() { return comm().size(); }
  Tensor dev(const std::vector<float>& v) { return ops().upload(Tensor::from_vector(v, {std::int64_t(v.size())})); }
  Tensor devi(const std::vector<std::int32_t>& v) {
    return ops().upload(Tensor::from_vector(v, {std::int64_t(v.size())}));
  }
  std::vector<float> mine(std::int64_t n) {
    std::vector<float> v(n);
    for (std::int64_t i = 0; i < n; ++i) v[i] = val(rank(), i);
    return v;
  }

  Backend* backend_ = nullptr;
};

TEST_P(CudaCommTest, AllReduceSumAndMax) {
  const std::int64_t n = 1003;
  std::vector<float> sum(n, 0.0f), mx(n, -std::numeric_limits<float>::infinity());
  for (int r = 0; r < size(); ++r) {
    for (std::int64_t i = 0; i < n; ++i) {
      sum[i] += val(r, i);
      mx[i] = std::max(mx[i], val(r, i));
    }
  }
  Tensor t = dev(mine(n));
  comm().all_reduce(t, ReduceOp::sum);
  EXPECT_EQ(t.device(), Device::cuda);
  EXPECT_EQ(t.to_vector(), sum);
  Tensor u = dev(mine(n));
  comm().all_reduce(u, ReduceOp::max);
  EXPECT_EQ(u.to_vector(), mx);
}

TEST_P(CudaCommTest, ComputeBeforeCollectiveIsOrdered) {
  // Kernels queued just before the collective must finish before it reads the buffer.
  const std::int64_t n = std::int64_t{1} << 22;
  Tensor t = ops().empty({n});
  ops().fill(t, 1.0f);
  ops().scale(t, static_cast<float>(rank() + 1));
  comm().all_reduce(t, ReduceOp::sum);
  const float want = static_cast<float>(size() * (size() + 1) / 2);
  const std::vector<float> got = t.to_vector();
  EXPECT_EQ(std::count(got.begin(), got.end(), want), n);
}

TEST_P(CudaCommTest, AllGatherFloatAndInt) {
  Tensor out = ops().empty({5 * size()});
  comm().all_gather(dev(mine(5)), out);
  std::vector<float> want;
  for (int r = 0; r < size(); ++r)
    for (int i = 0; i < 5; ++i) want.push_back(val(r, i));
  EXPECT_EQ(out.to_vector(), want);
  Tensor outi = ops().empty({3 * size()}, DType::i32);
  comm().all_gather(devi({rank(), 10 * rank(), -rank()}), outi);
  std::vector<std::int32_t> wanti;
  for (int r = 0; r < size(); ++r) wanti.insert(wanti.end(), {r, 10 * r, -r});
  EXPECT_EQ(outi.to_ivector(), wanti);
}

TEST_P(CudaCommTest, ReduceScatterSumAndMax) {
  const std::int64_t blk = 7, n = blk * size();
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::max}) {
    Tensor out = ops().empty({blk});
    comm().reduce_scatter(dev(mine(n)), out, op);
    std::vector<float> want(blk);
    for (std::int64_t k = 0; k < blk; ++k) {
      const std::int64_t i = rank() * blk + k;
      float acc = op == ReduceOp::sum ? 0.0f : -std::numeric_limits<float>::infinity();
      for (int r = 0; r < size(); ++r) acc = op == ReduceOp::sum ? acc + val(r, i) : std::max(acc, val(r, i));
      want[k] = acc;
    }
    EXPECT_EQ(out.to_vector(), want) << (op == ReduceOp::sum ? "sum" : "max");
  }
}

TEST_P(CudaCommTest, AllToAll) {
  const int blk = 3;
  std::vector<float> in;
  for (int j = 0; j < size(); ++j)
    for (int k = 0; k < blk; ++k) in.push_back(static_cast<float>(rank() * 1000 + j * 10 + k));
  Tensor out = ops().empty({blk * size()});
  comm().all_to_all(dev(in), out);
  std::vector<float> want;
  for (int i = 0; i < size(); ++i)
    for (int k = 0; k < blk; ++k) want.push_back(static_cast<float>(i * 1000 + rank() * 10 + k));
  EXPECT_EQ(out.to_vector(), want);
}

TEST_P(CudaCommTest, AllToAllvWithEmptyBlocksKeepsTheTail) {
  // Rank r sends (r + 2j) % 3 elements (sometimes none) to rank j.
  auto count = [](int from, int to) { return std::int64_t((from + 2 * to) % 3); };
  std::vector<std::int64_t> sc(size()), rc(size());
  std::vector<float> in, want;
  for (int j = 0; j < size(); ++j) {
    sc[j] = count(rank(), j);
    rc[j] = count(j, rank());
    for (std::int64_t k = 0; k < sc[j]; ++k) in.push_back(static_cast<float>(rank() * 1000 + j * 10 + k));
    for (std::int64_t k = 0; k < rc[j]; ++k) want.push_back(static_cast<float>(j * 1000 + rank() * 10 + k));
  }
  in.push_back(-1.0f);  // never sent
  want.insert(want.end(), {-7.0f, -7.0f});
  Tensor out = dev(std::vector<float>(want.size(), -7.0f));
  comm().all_to_allv(dev(in), sc, out, rc);
  EXPECT_EQ(out.to_vector(), want);
}

TEST_P(CudaCommTest, BroadcastFromLastRank) {
  const int root = size() - 1;
  Tensor t = dev(mine(11));
  comm().broadcast(t, root);
  std::vector<float> want(11);
  for (int i = 0; i < 11; ++i) want[i] = val(root, i);
  EXPECT_EQ(t.to_vector(), want);
  Tensor ti = devi({rank(), rank() + 1});
  comm().broadcast(ti, root);
  EXPECT_EQ(ti.to_ivector(), (std::vector<std::int32_t>{root, root + 1}));
}

TEST_P(CudaCommTest, SendRecvRing) {
  const int right = (rank() + 1) % size(), left = (rank() + size() - 1) % size();
  Tensor got = ops().empty({9});
  comm().sendrecv(dev(mine(9)), right, got, left, 3);
  std::vector<float> want(9);
  for (int i = 0; i < 9; ++i) want[i] = val(left, i);
  EXPECT_EQ(got.to_vector(), want);
}

TEST_P(CudaCommTest, BlockingSendRecvPairs) {
  // Pairs (0,1), (2,3): the even rank sends first, the odd one receives first.
  const int partner = rank() ^ 1;
  if (partner >= size()) return;  // no partner (one rank)
  Tensor got = ops().empty({6});
  if (rank() % 2 == 0) {
    comm().send(dev(mine(6)), partner, 1);
    comm().recv(got, partner, 2);
  } else {
    comm().recv(got, partner, 1);
    comm().send(dev(mine(6)), partner, 2);
  }
  std::vector<float> want(6);
  for (int i = 0; i < 6; ++i) want[i] = val(partner, i);
  EXPECT_EQ(got.to_vector(), want);
}

TEST_P(CudaCommTest, IsendIrecvRingBothPostedBeforeWaiting) {
  // Every rank sends right before it receives from the left: a deadlock for one lone NCCL
  // send per rank, fine for MPI and for the grouped NCCL implementation.
  const int right = (rank() + 1) % size(), left = (rank() + size() - 1) % size();
  Tensor out = dev(mine(13));
  Tensor got = ops().empty({13});
  auto s = comm().isend(out, right, 5);
  auto r = comm().irecv(got, left, 5);
  while (!r->test()) {
  }
  s->wait();
  r->wait();  // again: a no-op once complete
  std::vector<float> want(13);
  for (int i = 0; i < 13; ++i) want[i] = val(left, i);
  EXPECT_EQ(got.to_vector(), want);
}

TEST_P(CudaCommTest, IallReduceOverlapsCompute) {
  Tensor grad = ops().empty({4096});
  ops().fill(grad, static_cast<float>(rank() + 1));
  auto req = comm().iall_reduce(grad, ReduceOp::sum);
  Tensor other = ops().empty({4096});  // compute while the all-reduce is in flight
  ops().fill(other, 2.0f);
  ops().scale(other, 3.0f);
  req->wait();
  const float want = static_cast<float>(size() * (size() + 1) / 2);
  EXPECT_EQ(grad.to_vector(), std::vector<float>(4096, want));
  EXPECT_EQ(other.to_vector(), std::vector<float>(4096, 6.0f));
}

TEST_P(CudaCommTest, IallGatherAndIreduceScatterMatchTheirBlockingForms) {
  // Non-blocking forms (NCCL: on the communication stream, completed by an event; staged: the
  // blocking fallback) give exactly what every rank must hold, counted under their own names.
  const std::int64_t n = 257;  // per-rank block
  Tensor in = dev(mine(n));
  Tensor gathered = ops().empty({n * size()});
  auto g = comm().iall_gather(in, gathered);
  std::vector<float> full(size() * n), sum(n, 0.0f);
  for (int r = 0; r < size(); ++r)
    for (std::int64_t i = 0; i < n; ++i) full[r * n + i] = val(r, i);
  Tensor big = dev(mine(n * size()));
  Tensor block = ops().empty({n});
  auto rs = comm().ireduce_scatter(big, block, ReduceOp::sum);  // both in flight at once
  for (int r = 0; r < size(); ++r)
    for (std::int64_t i = 0; i < n; ++i) sum[i] += val(r, rank() * n + i);
  rs->wait();
  g->wait();
  EXPECT_EQ(gathered.to_vector(), full);
  EXPECT_EQ(block.to_vector(), sum);
  EXPECT_EQ(comm().counts().at("iall_gather").calls, 1);
  EXPECT_EQ(comm().counts().at("iall_gather").payload_bytes, 4 * n);
  EXPECT_EQ(comm().counts().at("ireduce_scatter").calls, 1);
  EXPECT_EQ(comm().counts().at("ireduce_scatter").payload_bytes, 4 * n * size());
  EXPECT_EQ(comm().counts().count("all_gather"), 0u) << "counted twice (blocking and non-blocking)";
  EXPECT_EQ(comm().counts().count("reduce_scatter"), 0u) << "counted twice (blocking and non-blocking)";
  // Host tensors take the MPI path (the shadow communicator), counted once here too.
  Tensor hin = Tensor::from_vector(mine(3), {3});
  Tensor hout = Tensor::empty({3 * size()});
  comm().iall_gather(hin, hout)->wait();
  std::vector<float> hwant(3 * size());
  for (int r = 0; r < size(); ++r)
    for (int i = 0; i < 3; ++i) hwant[r * 3 + i] = val(r, i);
  EXPECT_EQ(hout.to_vector(), hwant);
  EXPECT_EQ(comm().counts().at("iall_gather").calls, 2);
}

TEST_P(CudaCommTest, SplitOrdersByKeyAndCountsPerGroup) {
  const int color = rank() % 2;
  auto half = comm().split(color, size() - rank(), "half");  // key reverses the order
  std::vector<int> members;
  for (int r = 0; r < size(); ++r)
    if (r % 2 == color) members.push_back(r);
  ASSERT_EQ(half->size(), static_cast<int>(members.size()));
  EXPECT_EQ(half->name(), "half");
  EXPECT_EQ(half->kind(), comm().kind());
  const auto pos = std::find(members.begin(), members.end(), rank()) - members.begin();
  EXPECT_EQ(half->rank(), static_cast<int>(members.size() - 1 - pos));
  Tensor t = dev({static_cast<float>(rank() + 1)});
  half->all_reduce(t, ReduceOp::sum);
  float want = 0;
  for (int r : members) want += static_cast<float>(r + 1);
  EXPECT_EQ(t.to_vector()[0], want);
  EXPECT_EQ(half->counts().at("all_reduce").calls, 1);
  EXPECT_EQ(comm().counts().count("all_reduce"), 0u) << "the sub-group's call leaked into world's counters";
}

TEST_P(CudaCommTest, HostTensorsAreAcceptedToo) {
  // Bookkeeping (backends/runtime.cpp) gathers host tensors through the backend's communicator.
  Tensor in = Tensor::from_vector(std::vector<float>{static_cast<float>(rank())}, {1});
  Tensor out = Tensor::empty({size()});
  comm().all_gather(in, out);
  for (int r = 0; r < size(); ++r) EXPECT_EQ(out.at<float>(r), static_cast<float>(r));
  Tensor h = Tensor::from_vector(mine(4), {4});
  comm().all_reduce(h, ReduceOp::max);
  EXPECT_EQ(h.device(), Device::host);
  EXPECT_EQ(comm().counts().at("all_gather").payload_bytes, 4);
  EXPECT_EQ(comm().counts().at("all_reduce").payload_bytes, 16);
  Tensor on_gpu = ops().empty({size()});
  EXPECT_THROW(comm().all_gather(in, on_gpu), Error) << "one tensor on the host, one on the GPU";
}

std::string name_of(const ::testing::TestParamInfo<CudaTransport>& info) { return transport_name(info.param); }

INSTANTIATE_TEST_SUITE_P(Transports, CudaCommTest, ::testing::Values(CudaTransport::nccl, CudaTransport::staged),
                         name_of);

}  // namespace
}  // namespace fivefold::test
