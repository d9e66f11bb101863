// SPDX-License-Identifier: MIT
// Rank-0 narration: step headers, sentences and aligned tables (numbers right-aligned, text
// left-aligned). Everything goes to stdout and is flushed at once, so that narration and the
// output of other ranks' errors interleave in a readable order.
#include "common/narrate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "common/check.hpp"

namespace fivefold {

namespace {

/// True for cells that read as a number ("12", "-3.5e-06", "4.0 KiB", "1.00x", "12%").
bool looks_numeric(const std::string& s) {
  if (s.empty()) return false;
  std::size_t i = 0;
  if (s[i] == '-' || s[i] == '+') ++i;
  bool digit = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c == '.' || c == 'e' || c == 'E' || ((c == '-' || c == '+') && i > 0 &&
                                                     (s[i - 1] == 'e' || s[i - 1] == 'E'))) {
      continue;
    } else {
      break;
    }
  }
  if (!digit) return false;
  // Allow a short unit suffix after the number ("4.0 KiB", "2.5x", "12%").
  const std::string rest = s.substr(i);
  return rest.empty() || rest == "x" || rest == "%" || rest == " B" || rest == " KiB" || rest == " MiB" ||
         rest == " GiB" || rest == " s" || rest == " ms" || rest == " us";
}

}  // namespace

void Table::add(std::vector<std::string> row) {
  FIVEFOLD_CHECK(row.size() == header.size(), "table '", title, "': a row has ", row.size(),
                 " cells but the header has ", header.size(), " columns");
  rows.push_back(std::move(row));
}

std::string Table::render() const {
  const std::size_t ncol = header.size();
  std::vector<std::size_t> width(ncol, 0);
  std::vector<bool> numeric(ncol, !rows.empty());
  for (std::size_t c = 0; c < ncol; ++c) width[c] = header[c].size();
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < ncol && c < row.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
      if (!looks_numeric(row[c])) numeric[c] = false;
    }
  }
  auto line = [&](const std::vector<std::string>& cells, std::ostringstream& os) {
    std::string text;
    for (std::size_t c = 0; c < ncol; ++c) {
      const std::string& cell = c < cells.size() ? cells[c] : std::string();
      const std::string pad(width[c] - std::min(width[c], cell.size()), ' ');
      if (c) text += "  ";
      text += numeric[c] ? pad + cell : cell + pad;
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    os << text << '\n';
  };

  std::ostringstream os;
  if (!title.empty()) os << title << '\n';
  line(header, os);
  std::string rule;
  for (std::size_t c = 0; c < ncol; ++c) rule += (c ? "  " : "") + std::string(width[c], '-');
  os << rule << '\n';
  for (const auto& row : rows) line(row, os);
  return os.str();
}

void Narrator::step(int k, const std::string& title) const {
  if (!printing() || quiet_) return;
  std::cout << "\n== Step " << k << ": " << title << " ==\n" << std::flush;
}

void Narrator::say(const std::string& text) const {
  if (!printing() || quiet_) return;
  std::cout << text << '\n' << std::flush;
}

void Narrator::table(const Table& t) const {
  if (!printing()) return;
  std::cout << '\n' << t.render() << std::flush;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, f, v);
  if (n < 0) return "?";
  if (static_cast<std::size_t>(n) < sizeof buf) return std::string(buf, static_cast<std::size_t>(n));
  std::string big(static_cast<std::size_t>(n) + 1, '\0');
  std::snprintf(big.data(), big.size(), f, v);
  big.pop_back();
  return big;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"KiB", "MiB", "GiB"};
  const double mag = std::fabs(bytes);
  if (!(mag >= 1024.0)) return fmt("%.0f", bytes) + " B";  // also NaN
  double v = bytes / 1024.0;
  int u = 0;
  while (u < 2 && std::fabs(v) >= 1024.0) {
    v /= 1024.0;
    ++u;
  }
  return fmt("%.1f", v) + " " + units[u];
}

}  // namespace fivefold
