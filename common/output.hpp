// SPDX-License-Identifier: MIT
/// @file output.hpp
/// @brief Writing a run's files so that none is lost or half-written without a word: output
/// paths checked before any work, every file written under a temporary name in its own
/// directory and renamed into place once complete.
///
/// A run killed midway therefore leaves either the previous file or none, never one that looks
/// complete; a --dump directory additionally says "complete": true in its config.json only once
/// every array is written (the harness sets it at the end of the run).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace fivefold {

/// "" when @p path can be written: for a file (@p is_dir false) its directory exists or is
/// created and a probe file can be created there; for a directory (@p is_dir true) the same
/// inside it. Otherwise one line naming @p option, the path, the reason and the fix.
std::string check_writable(const std::string& option, const std::string& path, bool is_dir);

/// Writes @p bytes to @p path: to a temporary file in the same directory (created if missing),
/// flushed and closed, then renamed over @p path. Throws Error naming the path on any failure.
void write_file_atomic(const std::string& path, const std::string& bytes);

/// @p j pretty-printed (two spaces) to @p path with write_file_atomic.
void write_json_file(const std::string& path, const nlohmann::json& j);

/// DIR/config.json of a --dump: @p j with "complete": false (the harness rewrites it with
/// "complete": true once the run has written every array).
void write_dump_config(const std::string& dir, nlohmann::json j);

/// Sets "complete": true in DIR/config.json (the run wrote every array). Throws Error when the
/// file is missing or cannot be rewritten.
void mark_dump_complete(const std::string& dir);

}  // namespace fivefold
