// SPDX-License-Identifier: MIT
// The CUDA backend as a whole: the no-GPU error, the transport choice and its description,
// device memory (the allocator behind Tensor), and the counters of both transports against
// the table in backends/communicator.hpp and against the MPI communicator's own counts.
#include <cstdlib>
#include <functional>

#include "backends/cpu/mpi_communicator.hpp"
#include "cuda_test_support.hpp"

namespace fivefold::test {
namespace {

TEST(CudaBackend, NoGpuIsAUsageErrorOnEveryRank) {
  // The one test that needs the opposite machine: it checks the message a user without a GPU
  // gets from --backend cuda.
  if (no_gpu_reason().empty()) GTEST_SKIP() << "this machine has a GPU; the no-GPU error path cannot be reached";
  try {
    make_cuda_backend();
    FAIL() << "make_cuda_backend() succeeded without a GPU";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--backend cuda: no usable CUDA GPU (" + no_gpu_reason() + ")"), std::string::npos) << msg;
    EXPECT_NE(msg.find("run with --backend cpu"), std::string::npos) << msg;
  }
  EXPECT_THROW(make_backend("cuda"), UsageError);
}

TEST(CudaBackend, AutomaticTransportIsDescribed) {
  FIVEFOLD_REQUIRE_GPU();
  Backend b = make_backend("cuda");
  EXPECT_EQ(b.name, "cuda");
  EXPECT_EQ(b.device(), Device::cuda);
  EXPECT_EQ(b.ops->name(), "cuda");
  EXPECT_EQ(b.world->name(), "world");
  EXPECT_EQ(b.description.rfind("cuda: ", 0), 0u) << b.description;
  if (b.world->kind() == "nccl") {
    EXPECT_NE(b.description.find("NCCL"), std::string::npos) << b.description;
  } else {
    EXPECT_EQ(b.world->kind(), "mpi-staged");
    EXPECT_NE(b.description.find("staged in host memory"), std::string::npos) << b.description;
  }
  if (b.world->rank() == 0) std::printf("backend: %s\n", b.description.c_str());
}

TEST(CudaBackend, EnvironmentChoosesTheTransport) {
  FIVEFOLD_REQUIRE_GPU();
  ::setenv("FIVEFOLD_CUDA_TRANSPORT", "staged", 1);
  {
    Backend b = make_cuda_backend();
    EXPECT_EQ(b.world->kind(), "mpi-staged");
  }
  ::setenv("FIVEFOLD_CUDA_TRANSPORT", "carrier-pigeon", 1);
  EXPECT_THROW(make_cuda_backend(), UsageError);
  ::unsetenv("FIVEFOLD_CUDA_TRANSPORT");
}

TEST(CudaBackend, DeviceTensorsRoundTrip) {
  FIVEFOLD_REQUIRE_GPU();
  std::string why;
  Backend* b = cuda_backend(CudaTransport::staged, &why);
  ASSERT_NE(b, nullptr) << why;
  const std::vector<float> v = random_values(1000, 42);
  Tensor h = Tensor::from_vector(v, {10, 100});
  for (int round = 0; round < 3; ++round) {  // freed blocks are reused by the cache
    Tensor d = b->ops->upload(h);
    EXPECT_EQ(d.device(), Device::cuda);
    EXPECT_EQ(d.to_vector(), v);
    Tensor c = d.clone();                                 // device to device
    EXPECT_EQ(c.narrow(3, 2).to_vector(), h.narrow(3, 2).to_vector());  // a view at an offset
    Tensor z = Tensor::zeros({10, 100}, DType::f32, Device::cuda);
    EXPECT_EQ(z.to_vector(), std::vector<float>(1000, 0.0f));
    z.narrow(5, 5).copy_from(d.narrow(0, 5));
    std::vector<float> want(1000, 0.0f);
    std::copy(v.begin(), v.begin() + 500, want.begin() + 500);
    EXPECT_EQ(z.to_vector(), want);
  }
}

// One call of every operation; tensors are made on the host and moved by @p place.
void run_every_op(Communicator& c, const std::function<Tensor(const Tensor&)>& place) {
  const int n = c.size();
  const int right = (c.rank() + 1) % n, left = (c.rank() + n - 1) % n;
  auto zeros = [&](std::int64_t k) { return place(Tensor::zeros({k})); };
  Tensor ar = zeros(10);
  c.all_reduce(ar, ReduceOp::sum);
  c.all_reduce(ar, ReduceOp::max);
  Tensor ag = zeros(3 * n);
  c.all_gather(zeros(3), ag);
  Tensor rs = zeros(4);
  c.reduce_scatter(zeros(4 * n), rs, ReduceOp::sum);
  Tensor a2a = zeros(2 * n);
  c.all_to_all(zeros(2 * n), a2a);
  std::vector<std::int64_t> counts(n, 1);
  counts[c.rank()] = 2;  // two to itself, one to everyone else
  Tensor a2av = zeros(n + 1);
  c.all_to_allv(zeros(n + 1), counts, a2av, counts);
  Tensor bc = zeros(6);
  c.broadcast(bc, 0);
  Tensor sr = zeros(5);
  c.sendrecv(zeros(5), right, sr, left, 0);
  Tensor got = zeros(4);
  Tensor out = zeros(4);
  auto s = c.isend(out, right, 1);
  auto r = c.irecv(got, left, 1);
  s->wait();
  r->wait();
  Tensor g = zeros(8);
  c.iall_reduce(g, ReduceOp::sum)->wait();
  c.barrier();
}

class CudaCountsTest : public ::testing::TestWithParam<CudaTransport> {};

TEST_P(CudaCountsTest, EveryOpCountedOnceAsInTheTable) {
  FIVEFOLD_REQUIRE_GPU();
  std::string why;
  Backend* b = cuda_backend(GetParam(), &why);
  if (b == nullptr) GTEST_SKIP() << transport_name(GetParam()) << " transport not possible here: " << why;
  Communicator& c = *b->world;
  const std::int64_t n = c.size();
  c.set_counting(true);
  c.reset_counts();
  run_every_op(c, [&](const Tensor& t) { return b->ops->upload(t); });
  const CommCounts want = {
      {"all_reduce", {2, 2 * 40}},    {"all_gather", {1, 12}},     {"reduce_scatter", {1, 16 * n}},
      {"all_to_all", {1, 8 * n}},     {"all_to_allv", {1, 4 * (n + 1)}}, {"broadcast", {1, 24}},
      {"sendrecv", {1, 20}},          {"isend", {1, 16}},          {"irecv", {1, 16}},
      {"iall_reduce", {1, 32}},       {"barrier", {1, 0}},
  };
  for (const auto& [op, count] : want) {
    ASSERT_EQ(c.counts().count(op), 1u) << op << " not counted";
    EXPECT_EQ(c.counts().at(op).calls, count.calls) << op;
    EXPECT_EQ(c.counts().at(op).payload_bytes, count.payload_bytes) << op;
  }
  EXPECT_EQ(c.counts().size(), want.size()) << "an operation counted under an unexpected name";

  // The same calls on host tensors through MPI count the same.
  auto mpi = MpiCommunicator::world();
  run_every_op(*mpi, [](const Tensor& t) { return t; });
  for (const auto& [op, count] : mpi->counts()) {
    EXPECT_EQ(c.counts().at(op).calls, count.calls) << op << " vs MPI";
    EXPECT_EQ(c.counts().at(op).payload_bytes, count.payload_bytes) << op << " vs MPI";
  }

  // Bookkeeping with counting off leaves the counters alone.
  const CommCounts before = c.counts();
  c.set_counting(false);
  run_every_op(c, [&](const Tensor& t) { return b->ops->upload(t); });
  c.set_counting(true);
  EXPECT_EQ(c.counts().size(), before.size());
  for (const auto& [op, count] : before) EXPECT_EQ(c.counts().at(op).calls, count.calls) << op;
}

INSTANTIATE_TEST_SUITE_P(Transports, CudaCountsTest, ::testing::Values(CudaTransport::nccl, CudaTransport::staged),
                         [](const auto& info) { return transport_name(info.param); });

}  // namespace
}  // namespace fivefold::test
