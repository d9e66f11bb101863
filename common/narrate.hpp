// SPDX-License-Identifier: MIT
/// @file narrate.hpp
/// @brief Rank-0 narration: step headers, sentences, and aligned tables.
///
/// Only rank 0 prints (other ranks' facts reach it through the chapter's own gathers). With
/// --quiet only tables are printed.
#pragma once

#include <string>
#include <vector>

namespace fivefold {

/// A table with a header row, printed with aligned columns.
struct Table {
  std::string title;                           ///< printed above the table
  std::vector<std::string> header;             ///< column names
  std::vector<std::vector<std::string>> rows;  ///< cells, one vector per row
  /// Appends a row (must have header.size() cells).
  void add(std::vector<std::string> row);
  /// The table as text, columns aligned, ending with a newline.
  std::string render() const;
};

/// Prints the story of a run on rank 0.
class Narrator {
 public:
  /// @param rank this process's world rank; @param quiet suppress everything but tables.
  Narrator(int rank, bool quiet) : rank_(rank), quiet_(quiet) {}
  /// "== Step k: title ==" header.
  void step(int k, const std::string& title) const;
  /// One paragraph of narration.
  void say(const std::string& text) const;
  /// A table (printed even with --quiet).
  void table(const Table& t) const;
  /// True on the rank that prints.
  bool printing() const { return rank_ == 0; }
  /// True when narration is suppressed.
  bool quiet() const { return quiet_; }

 private:
  int rank_;
  bool quiet_;
};

/// Formats a value with printf-style @p fmt ("%.3g").
std::string fmt(const char* fmt, double v);
/// Human-readable bytes: "4.0 KiB", "16.0 MiB".
std::string human_bytes(double bytes);

}  // namespace fivefold
