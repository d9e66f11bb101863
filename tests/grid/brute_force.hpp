// SPDX-License-Identifier: MIT
// Expected groups computed WITHOUT ProcessGrid's arithmetic, for the grid tests:
// - coordinates by an odometer (count up, fastest axis first, carry into the next), no division;
// - membership by brute force over all rank pairs: two ranks share an S-group iff their
//   coordinates agree on every axis not in S;
// - ordering from the contract's words: member i's coordinates on S are the i-th tuple of an
//   odometer over S's axes (leftmost fastest), group g's coordinates on the other axes are the
//   g-th tuple of an odometer over those axes.
// Axes are plain indices 0..4 = tp, sp, ep, dp, pp; a set is a bit mask.
#pragma once

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace fivefold::grid_test {

using Sizes = std::array<int, 5>;
using Coord = std::array<int, 5>;
using Groups = std::vector<std::vector<int>>;

inline const char* const kNames[5] = {"tp", "sp", "ep", "dp", "pp"};

/// "tp-dp-pp" -> {0, 3, 4} (cp = sp). Test input only: no validation beyond known names.
inline std::vector<int> order_of(const std::string& s) {
  std::vector<int> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t end = s.find('-', start);
    if (end == std::string::npos) end = s.size();
    std::string name = s.substr(start, end - start);
    if (name == "cp") name = "sp";
    int idx = -1;
    for (int a = 0; a < 5; ++a)
      if (name == kNames[a]) idx = a;
    if (idx < 0) throw std::invalid_argument("test order: bad axis " + name);
    out.push_back(idx);
    start = end + 1;
  }
  return out;
}

/// The canonical name of mask @p m ("tp-pp").
inline std::string set_name(unsigned m) {
  std::string out;
  for (int a = 0; a < 5; ++a)
    if (m >> a & 1u) out += (out.empty() ? "" : "-") + std::string(kNames[a]);
  return out;
}

/// Tuples of coordinates on @p axes (fastest first), in odometer order; other axes stay 0.
inline std::vector<Coord> odometer(const Sizes& sizes, const std::vector<int>& axes) {
  int count = 1;
  for (int a : axes) count *= sizes[a];
  std::vector<Coord> out;
  Coord c{};
  for (int i = 0; i < count; ++i) {
    out.push_back(c);
    for (int a : axes) {  // increment with carry, fastest axis first
      if (++c[a] < sizes[a]) break;
      c[a] = 0;
    }
  }
  return out;
}

/// Coordinates of every rank: rank r is the r-th tuple of the odometer over the whole order.
inline std::vector<Coord> all_coords(const Sizes& sizes, const std::vector<int>& order) {
  return odometer(sizes, order);
}

/// Groups of set @p mask by brute force over pairs, as sets (each sorted; groups sorted).
inline Groups membership(const Sizes& sizes, const std::vector<int>& order, unsigned mask) {
  const std::vector<Coord> c = all_coords(sizes, order);
  const int n = static_cast<int>(c.size());
  std::set<std::vector<int>> groups;
  for (int r = 0; r < n; ++r) {
    std::vector<int> g;
    for (int q = 0; q < n; ++q) {
      bool same = true;
      for (int a = 0; a < 5; ++a)
        if (!(mask >> a & 1u) && c[r][a] != c[q][a]) same = false;
      if (same) g.push_back(q);
    }
    groups.insert(g);
  }
  return Groups(groups.begin(), groups.end());
}

/// Groups of set @p mask in the contract's order (see the file comment).
inline Groups ordered_groups(const Sizes& sizes, const std::vector<int>& order, unsigned mask) {
  const std::vector<Coord> c = all_coords(sizes, order);
  std::map<Coord, int> rank_of;
  for (std::size_t r = 0; r < c.size(); ++r) rank_of[c[r]] = static_cast<int>(r);
  std::vector<int> in, out;
  for (int a : order) ((mask >> a & 1u) ? in : out).push_back(a);
  Groups groups;
  for (const Coord& other : odometer(sizes, out)) {
    std::vector<int> g;
    for (const Coord& mine : odometer(sizes, in)) {
      Coord x{};
      for (int a : out) x[a] = other[a];
      for (int a : in) x[a] = mine[a];
      g.push_back(rank_of.at(x));
    }
    groups.push_back(g);
  }
  return groups;
}

/// @p g with each group sorted and the groups sorted (for comparing as sets).
inline Groups as_sets(Groups g) {
  for (auto& x : g) std::sort(x.begin(), x.end());
  std::sort(g.begin(), g.end());
  return g;
}

/// The 31 non-empty masks by number of axes, then canonical order (the JSON key order).
inline std::vector<unsigned> all_masks() {
  std::vector<unsigned> masks;
  for (unsigned m = 1; m < 32; ++m) masks.push_back(m);
  auto axes = [](unsigned m) {
    std::vector<int> v;
    for (int a = 0; a < 5; ++a)
      if (m >> a & 1u) v.push_back(a);
    return v;
  };
  std::stable_sort(masks.begin(), masks.end(), [&](unsigned x, unsigned y) {
    const auto ax = axes(x), ay = axes(y);
    if (ax.size() != ay.size()) return ax.size() < ay.size();
    return ax < ay;
  });
  return masks;
}

}  // namespace fivefold::grid_test
