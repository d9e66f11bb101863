// SPDX-License-Identifier: MIT
// The one factory that knows which backends were built. Lesson code never sees this choice.
#include "backends/backend.hpp"

#include "backends/cpu/eigen_ops.hpp"
#include "backends/cpu/mpi_communicator.hpp"
#include "common/check.hpp"
#if FIVEFOLD_HAVE_CUDA
#include "backends/cuda/cuda_backend.hpp"
#endif

namespace fivefold {

std::vector<std::string> available_backends() {
#if FIVEFOLD_HAVE_CUDA
  return {"cpu", "cuda"};
#else
  return {"cpu"};
#endif
}

Backend make_backend(const std::string& name) {
  if (name == "cpu") {
    Backend b;
    b.name = "cpu";
    b.world = MpiCommunicator::world();
    b.ops = std::make_unique<EigenOps>();
    b.description = "cpu: Eigen on the host, " + std::to_string(b.world->size()) + " MPI rank(s)";
    return b;
  }
  if (name == "cuda") {
#if FIVEFOLD_HAVE_CUDA
    return make_cuda_backend();
#else
    throw UsageError(
        "--backend cuda: this build has no CUDA backend; configure with `cmake --preset cuda` "
        "(needs the CUDA toolkit and NCCL), or run with --backend cpu");
#endif
  }
  throw UsageError("--backend " + name + ": unknown backend; choose cpu or cuda");
}

}  // namespace fivefold
