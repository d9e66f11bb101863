// SPDX-License-Identifier: MIT
// The backend factory: "cpu" gives an MPI world communicator plus Eigen ops on the host; an
// unknown name, or "cuda" in a build without the CUDA backend, throws a UsageError whose
// message tells the user what to do instead.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "backends/backend.hpp"
#include "backends/runtime.hpp"
#include "collective_checks.hpp"

namespace fivefold::testing {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(BackendFactory, CpuBackend) {
  Backend b = make_backend("cpu");
  EXPECT_EQ(b.name, "cpu");
  ASSERT_TRUE(b.world);
  ASSERT_TRUE(b.ops);
  EXPECT_EQ(b.world->name(), "world");
  EXPECT_EQ(b.world->kind(), "mpi");
  EXPECT_EQ(b.world->size(), MpiSession::world_size());
  EXPECT_EQ(b.world->rank(), MpiSession::world_rank());
  EXPECT_EQ(b.ops->name(), "eigen");
  EXPECT_EQ(b.device(), Device::host);
  EXPECT_TRUE(contains(b.description, "cpu")) << b.description;
  EXPECT_TRUE(contains(b.description, std::to_string(b.world->size()) + " MPI rank")) << b.description;
  EXPECT_TRUE(b.world->counts().empty());
  // Two backends at once are independent: counters are per Communicator object.
  Backend other = make_backend("cpu");
  Tensor x = Tensor::zeros({3});
  b.world->all_reduce(x);
  EXPECT_EQ(b.world->counts().at("all_reduce").calls, 1);
  EXPECT_TRUE(other.world->counts().empty());
}

TEST(BackendFactory, AvailableBackends) {
  const auto names = available_backends();
  EXPECT_NE(std::find(names.begin(), names.end(), "cpu"), names.end());
#if FIVEFOLD_HAVE_CUDA
  EXPECT_NE(std::find(names.begin(), names.end(), "cuda"), names.end());
#else
  EXPECT_EQ(std::find(names.begin(), names.end(), "cuda"), names.end());
#endif
}

#if !FIVEFOLD_HAVE_CUDA
TEST(BackendFactory, CudaWithoutCudaBuildSaysWhichPreset) {
  try {
    make_backend("cuda");
    ADD_FAILURE() << "make_backend(\"cuda\") must throw in a build without CUDA";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_TRUE(contains(msg, "cmake --preset cuda")) << msg;
    EXPECT_TRUE(contains(msg, "--backend cpu")) << msg;
  }
}
#endif

TEST(BackendFactory, UnknownNameListsTheChoices) {
  for (const std::string bad : {"tpu", "", "CPU"}) {
    try {
      make_backend(bad);
      ADD_FAILURE() << "make_backend(\"" << bad << "\") must throw";
    } catch (const UsageError& e) {
      const std::string msg = e.what();
      EXPECT_TRUE(contains(msg, "'" + bad + "'") || contains(msg, "backend " + bad + ":")) << msg;
      EXPECT_TRUE(contains(msg, "cpu")) << msg;
      EXPECT_TRUE(contains(msg, "cuda")) << msg;
    }
  }
}

}  // namespace
}  // namespace fivefold::testing
