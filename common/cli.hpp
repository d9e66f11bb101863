// SPDX-License-Identifier: MIT
/// @file cli.hpp
/// @brief The command line every chapter accepts (docs/reference.md, "Command line"), on top of CLI11.
///
/// A chapter creates a Cli, adds the common options, adds its own options on app(), and calls
/// parse(). Errors become one UsageError line naming the option and the fix.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace fivefold {

/// Options shared by every chapter.
struct CommonOptions {
  std::string backend = "cpu";  ///< --backend cpu|cuda
  bool list_steps = false;      ///< --list-steps
  int step = 0;                 ///< --step K (0 = all steps in order)
  std::string dump;             ///< --dump DIR ("" = none)
  std::string json;             ///< --json FILE ("" = none)
  std::string trace;            ///< --trace FILE ("" = none)
  bool quiet = false;           ///< --quiet
  std::string max_memory;       ///< --max-memory SIZE: the ranks of one machine together ("" = its available memory)
};

/// Bytes of @p text: a number with an optional K, M, G or T suffix (powers of 1024), e.g. "8G",
/// "1.5G", "65536". Throws UsageError naming @p option when it is not one, or not positive.
double parse_bytes(const std::string& option, const std::string& text);

/// The memory this machine has available (MemAvailable of /proc/meminfo), or 0 when unknown.
double available_memory_bytes();

/// A chapter's command line.
class Cli {
 public:
  /// @param program executable name; @param description one paragraph for --help.
  Cli(const std::string& program, const std::string& description);
  /// The underlying CLI11 app, for the chapter's own options (use ->capture_default_str()).
  CLI::App& app() { return app_; }
  /// Adds --backend, --list-steps, --step, --dump, --json, --trace, --quiet.
  void add_common(CommonOptions& opts);
  /// Parses argv. Returns an exit status when the program should stop now (0 after --help,
  /// printed only when @p print is true, i.e. on rank 0), std::nullopt to go on. Throws
  /// UsageError with one line for an unknown option or a bad value.
  std::optional<int> parse(int argc, char** argv, bool print);

 private:
  CLI::App app_;
};

/// CLI11 validator for an integer >= 1 with a message naming the fix.
extern const CLI::Validator kPositive;
/// CLI11 validator for an integer >= 0.
extern const CLI::Validator kNonNegative;

}  // namespace fivefold
