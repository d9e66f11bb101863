// SPDX-License-Identifier: MIT
// The CUDA tests' shared state. Backends are expensive (NCCL set-up) and collective to build,
// so each transport is built once per process, on first use; a GoogleTest environment destroys
// them after the last test, while MPI is still up (the test main finalises MPI after that).
#include "cuda_test_support.hpp"

#include <cmath>
#include <map>
#include <memory>
#include <random>

#include "backends/cpu/eigen_ops.hpp"

namespace fivefold::test {

namespace {

struct Backends {
  std::map<CudaTransport, std::unique_ptr<Backend>> built;
  std::map<CudaTransport, std::string> impossible;
};

Backends& backends() {
  static Backends b;
  return b;
}

class TearDownBackends : public ::testing::Environment {
 public:
  void TearDown() override { backends().built.clear(); }
};

[[maybe_unused]] ::testing::Environment* const g_teardown =
    ::testing::AddGlobalTestEnvironment(new TearDownBackends);

}  // namespace

const std::string& no_gpu_reason() {
  static const std::string reason = cuda_unavailable_reason();
  return reason;
}

Backend* cuda_backend(CudaTransport transport, std::string* why) {
  Backends& b = backends();
  if (auto it = b.built.find(transport); it != b.built.end()) return it->second.get();
  if (auto it = b.impossible.find(transport); it != b.impossible.end()) {
    *why = it->second;
    return nullptr;
  }
  try {
    auto backend = std::make_unique<Backend>(make_cuda_backend(transport));
    return (b.built[transport] = std::move(backend)).get();
  } catch (const UsageError& e) {  // raised on every rank alike
    b.impossible[transport] = e.what();
    *why = e.what();
    return nullptr;
  }
}

Ops& reference_ops() {
  static EigenOps ops;
  return ops;
}

std::vector<float> random_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0, ref = 0;
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    diff += d * d;
    ref += static_cast<double>(want[i]) * want[i];
  }
  if (ref == 0) return std::sqrt(diff);
  return std::sqrt(diff / ref);
}

std::string transport_name(CudaTransport t) {
  switch (t) {
    case CudaTransport::nccl: return "nccl";
    case CudaTransport::staged: return "staged";
    default: return "automatic";
  }
}

}  // namespace fivefold::test
