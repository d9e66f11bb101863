// SPDX-License-Identifier: MIT
#include "common/cli.hpp"

#include <fstream>

#include <cmath>

#include <cctype>

#include <iostream>

#include "common/check.hpp"

namespace fivefold {

const CLI::Validator kPositive(
    [](std::string& s) -> std::string {
      try {
        std::size_t used = 0;
        const long long v = std::stoll(s, &used);
        if (used == s.size() && v >= 1) return {};
      } catch (...) {
      }
      return "must be a positive integer (got '" + s + "')";
    },
    "POSITIVE");

const CLI::Validator kNonNegative(
    [](std::string& s) -> std::string {
      try {
        std::size_t used = 0;
        const long long v = std::stoll(s, &used);
        if (used == s.size() && v >= 0) return {};
      } catch (...) {
      }
      return "must be an integer >= 0 (got '" + s + "')";
    },
    "NON-NEGATIVE");

Cli::Cli(const std::string& program, const std::string& description) : app_(description, program) {
  app_.option_defaults()->always_capture_default();
  app_.get_formatter()->column_width(34);
}

void Cli::add_common(CommonOptions& o) {
  app_.add_option("--backend", o.backend, "compute + communication backend")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app_.add_flag("--list-steps", o.list_steps, "list the chapter's steps and exit");
  app_.add_option("--step", o.step, "run only step K (0 = all steps, in order)")->check(kNonNegative);
  app_.add_option("--dump", o.dump, "write the NumPy dump into DIR (docs/reference.md, 'The dump')")
      ->type_name("DIR");
  app_.add_option("--json", o.json, "write the run summary to FILE (docs/reference.md, 'The summary')")
      ->type_name("FILE");
  app_.add_option("--trace", o.trace, "write a Chrome trace (chrome://tracing, Perfetto) to FILE")
      ->type_name("FILE");
  app_.add_flag("--quiet", o.quiet, "no narration; the summary table only");
  app_.add_option("--max-memory", o.max_memory,
                  "memory the ranks of one machine may use together, e.g. 8G or 512M (a run predicted to need more "
                  "is refused before it starts)")
      ->type_name("SIZE")
      ->default_str("the machine's available memory");
}

std::optional<int> Cli::parse(int argc, char** argv, bool print) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    if (print) std::cout << app_.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    if (print) std::cout << app_.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::ParseError& e) {
    throw UsageError(std::string(e.what()) + "; run with --help for the options and their defaults");
  }
  return std::nullopt;
}

double parse_bytes(const std::string& option, const std::string& text) {
  std::size_t used = 0;
  double value = 0.0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string suffix = text.substr(used);
  if (!suffix.empty() && (suffix.back() == 'B' || suffix.back() == 'b')) suffix.pop_back();  // "8GB", "8GiB"
  if (suffix.size() > 1 && (suffix.back() == 'i' || suffix.back() == 'I')) suffix.pop_back();
  const std::string units = "KMGT";
  const std::size_t unit = suffix.size() == 1 ? units.find(static_cast<char>(std::toupper(suffix[0]))) : std::string::npos;
  FIVEFOLD_USAGE_CHECK(used > 0 && (suffix.empty() || unit != std::string::npos) && std::isfinite(value) && value > 0,
                       option, " ", text, " is not a size; pass a positive number of bytes with an optional K, M, G "
                       "or T suffix, e.g. 8G");
  return suffix.empty() ? value : value * std::pow(1024.0, static_cast<double>(unit + 1));
}

double available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024.0;
  return 0.0;
}

}  // namespace fivefold
