// SPDX-License-Identifier: MIT
/// @file check.hpp
/// @brief Errors: FIVEFOLD_CHECK throws an Error whose message names the bad value and the fix.
///
/// Two kinds of error exist, because an MPI job must end cleanly on every rank:
/// - UsageError: a bad option or an impossible layout. Every rank sees the same argv and world
///   size, so every rank throws it at the same point, before any communication; the chapter
///   main prints it once (rank 0) and every rank exits with status 2.
/// - Error: anything else (a failed cross-check, a backend failure). It may happen on one rank
///   only, so the main prints it with the rank and aborts the whole job (MPI_Abort).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace fivefold {

/// A runtime failure; may be raised on a single rank (the job is aborted).
class Error : public std::runtime_error {
 public:
  /// @param msg one line: what is wrong and how to fix it.
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

/// Bad command line or impossible layout; raised identically on every rank (clean exit 2).
class UsageError : public Error {
 public:
  /// @param msg one line: the bad option or value and the fix.
  explicit UsageError(const std::string& msg) : Error(msg) {}
};

namespace detail {
/// Builds a message from any streamable parts (used by the FIVEFOLD_ macros).
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}
}  // namespace detail

}  // namespace fivefold

/// Throws fivefold::Error with the streamed message parts when @p cond is false.
/// Example: FIVEFOLD_CHECK(n > 0, "--count must be > 0 (got ", n, "); pass a positive size").
#define FIVEFOLD_CHECK(cond, ...)                                               \
  do {                                                                          \
    if (!(cond)) throw ::fivefold::Error(::fivefold::detail::concat(__VA_ARGS__)); \
  } while (0)

/// Like FIVEFOLD_CHECK but throws fivefold::UsageError (bad option or layout, same on all ranks).
#define FIVEFOLD_USAGE_CHECK(cond, ...)                                               \
  do {                                                                                \
    if (!(cond)) throw ::fivefold::UsageError(::fivefold::detail::concat(__VA_ARGS__)); \
  } while (0)
