// SPDX-License-Identifier: MIT
/// @file clock.hpp
/// @brief Seconds on a monotonic clock, for the phases and passes the chapters time.
#pragma once

#include <chrono>

namespace fivefold {

/// Seconds since an arbitrary fixed point of the steady (monotonic) clock; differences of two
/// calls are elapsed wall time.
inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace fivefold
