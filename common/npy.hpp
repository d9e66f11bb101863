// SPDX-License-Identifier: MIT
/// @file npy.hpp
/// @brief NumPy .npy files (format version 1.0, little-endian, C order): float32 and int32.
///
/// What `--dump` writes; numpy.load() reads it, and we read what numpy.save() writes.
#pragma once

#include <string>

#include "common/tensor.hpp"

namespace fivefold::npy {

/// Writes @p t (any device; copied to the host) to @p path as '<f4' or '<i4'. Creates parent
/// directories. Throws Error naming the path on failure.
void save(const std::string& path, const Tensor& t);
/// Reads a '<f4' or '<i4' C-order .npy (versions 1.0-3.0) into a host tensor. Throws Error
/// naming the path and the problem (missing file, other dtype, Fortran order, truncated data).
Tensor load(const std::string& path);

}  // namespace fivefold::npy
