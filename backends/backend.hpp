// SPDX-License-Identifier: MIT
/// @file backend.hpp
/// @brief A backend = a world Communicator + Ops on one device; the one factory that builds it.
///
/// The factory (backend.cpp) is the only file outside backends/cuda that knows whether the CUDA
/// backend was built. Lesson code asks for a backend by name and uses the interfaces.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/communicator.hpp"
#include "backends/ops.hpp"

namespace fivefold {

/// What a chapter computes and communicates with.
struct Backend {
  std::string name;                     ///< "cpu" or "cuda"
  std::unique_ptr<Communicator> world;  ///< every rank of the job, group name "world"
  std::unique_ptr<Ops> ops;             ///< compute on this backend's device
  std::string description;              ///< one line for the narration (devices, transport)
  /// Device of the backend's tensors.
  Device device() const { return ops->device(); }
};

/// Names accepted by make_backend() in this build ("cpu", plus "cuda" in a CUDA build).
std::vector<std::string> available_backends();

/// Builds backend @p name over MPI_COMM_WORLD (MPI must be initialised, see MpiSession).
/// Throws UsageError naming the fix for an unknown name, a build without CUDA, or a machine
/// without a usable GPU. Collective: every rank must call it.
Backend make_backend(const std::string& name);

}  // namespace fivefold
