// SPDX-License-Identifier: MIT
/// @file process_grid.hpp
/// @brief ProcessGrid: the world as a 5-D grid tp x sp x ep x dp x pp
/// (docs/reference.md, "The process grid"), rank <->
/// coordinates, and the groups of any set of axes.
///
/// A rank is a mixed-radix number whose digits are its coordinates, taken in the `--order`:
/// the leftmost axis varies fastest (stride 1). With the default order tp-sp-ep-dp-pp,
///   rank = tp_c + tp*(sp_c + sp*(ep_c + ep*(dp_c + dp*pp_c))).
/// The S-group of a rank (S a set of axes) is every rank whose coordinates agree with it on
/// the axes NOT in S. Inside a group, ranks are ordered by the group-local rank (the
/// coordinates on the axes of S, leftmost-fastest in the order); groups are ordered by the
/// coordinates on the other axes, leftmost-fastest. Both orders happen to be increasing global
/// rank (of the members, and of each group's first member).
///
/// What it leaves out: communication. This file knows no MPI; backends/grid_comms.hpp turns
/// groups into Communicators (split with color = group index, key = group-local rank).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fivefold {

/// The five axes of parallelism, in the canonical order tp, sp, ep, dp, pp.
enum class Axis : int { tp = 0, sp = 1, ep = 2, dp = 3, pp = 4 };

/// Number of axes.
inline constexpr int kNumAxes = 5;

/// Every axis, in canonical order.
inline constexpr std::array<Axis, kNumAxes> kAllAxes = {Axis::tp, Axis::sp, Axis::ep, Axis::dp, Axis::pp};

/// The default `--order`: tensor parallelism fastest (innermost), pipeline slowest.
inline constexpr const char* kDefaultOrder = "tp-sp-ep-dp-pp";

/// One number per axis, indexed by Axis (sizes, coordinates, strides).
using AxisArray = std::array<int, kNumAxes>;

/// The canonical name of @p a: "tp", "sp", "ep", "dp" or "pp".
const char* axis_name(Axis a);

/// The axis called @p name ("cp" is another name for "sp"). Throws UsageError for any other
/// name, naming it and the accepted ones.
Axis parse_axis(const std::string& name);

/// A set of axes (e.g. {tp, pp}: the model-parallel group of Megatron-LM's 3-D layout).
class AxisSet {
 public:
  /// The empty set.
  AxisSet() = default;
  /// The set of @p axes (repeats are ignored here; parse() rejects them).
  AxisSet(std::initializer_list<Axis> axes);
  /// Parses "tp", "tp-pp", "pp-tp", "cp-dp", ... (any order, '-' separated). Throws
  /// UsageError for an unknown or repeated axis, or an empty string.
  static AxisSet parse(const std::string& spec);
  /// The set whose bit a (a = 0..4, canonical order) is set in @p bits.
  static AxisSet from_bits(unsigned bits);
  /// The 31 non-empty sets: by number of axes, then in canonical order (tp, sp, ..., tp-sp, ...).
  static std::vector<AxisSet> all();

  /// True when @p a is in the set.
  bool contains(Axis a) const { return (bits_ >> static_cast<int>(a)) & 1u; }
  /// True for the empty set.
  bool empty() const { return bits_ == 0; }
  /// Number of axes in the set.
  int count() const;
  /// Bit a is set when axis a is in the set.
  unsigned bits() const { return bits_; }
  /// The axes of the set in canonical order.
  std::vector<Axis> axes() const;
  /// The canonical name: axes in order tp-sp-ep-dp-pp joined by '-' ("tp-pp"); "" when empty.
  std::string name() const;
  /// The axes not in this set.
  AxisSet complement() const { return from_bits(~bits_ & ((1u << kNumAxes) - 1)); }

  /// Same axes.
  bool operator==(const AxisSet& o) const { return bits_ == o.bits_; }
  /// Different axes.
  bool operator!=(const AxisSet& o) const { return bits_ != o.bits_; }
  /// By bits (for std::map keys).
  bool operator<(const AxisSet& o) const { return bits_ < o.bits_; }

 private:
  unsigned bits_ = 0;
};

/// Parses an `--order` string into the five axes, fastest first ("cp" accepted for "sp").
/// Throws UsageError naming the problem: an unknown axis, a repeated axis, a missing axis.
std::vector<Axis> parse_order(const std::string& order);

/// The world as a grid of ranks (see the file comment).
class ProcessGrid {
 public:
  /// @param sizes  the size of each axis (indexed by Axis), each >= 1
  /// @param order  the axes fastest first, e.g. "tp-sp-ep-dp-pp" (all five, "cp" = "sp")
  /// @param world_size the number of ranks; must equal the product of @p sizes
  /// Throws UsageError with one line for a size < 1, a product that is not @p world_size, and
  /// an unknown, repeated or missing axis in @p order.
  ProcessGrid(const AxisArray& sizes, const std::string& order, int world_size);

  /// Number of ranks = product of the sizes.
  int world_size() const { return world_size_; }
  /// Size of axis @p a.
  int size(Axis a) const { return sizes_[static_cast<int>(a)]; }
  /// Product of the sizes of the axes of @p s (1 for the empty set): the size of an S-group.
  int size(const AxisSet& s) const;
  /// The sizes, indexed by Axis.
  const AxisArray& sizes() const { return sizes_; }
  /// The axes fastest first.
  const std::vector<Axis>& order() const { return order_; }
  /// The order as a string, e.g. "tp-sp-ep-dp-pp" (canonical names).
  std::string order_name() const;
  /// Rank distance between neighbours along @p a: product of the sizes of the axes left of it.
  int stride(Axis a) const { return strides_[static_cast<int>(a)]; }
  /// "tp 2 x sp 1 x ep 1 x dp 2 x pp 4 = 16 ranks, order tp-sp-ep-dp-pp".
  std::string describe() const;
  /// "tp 2 x sp 1 x ep 1 x dp 2 x pp 4".
  std::string sizes_text() const;

  /// The coordinates of @p rank (indexed by Axis). Throws Error for a rank outside the grid.
  AxisArray coords(int rank) const;
  /// The coordinate of @p rank along @p a.
  int coord(int rank, Axis a) const { return coords(rank)[static_cast<int>(a)]; }
  /// The rank at coordinates @p c (each in range; throws Error otherwise).
  int rank_of(const AxisArray& c) const;

  /// Number of S-groups = world_size() / size(s).
  int num_groups(const AxisSet& s) const { return world_size_ / size(s); }
  /// Which S-group @p rank is in, 0..num_groups(s)-1 (the split color).
  int group_index(int rank, const AxisSet& s) const;
  /// Position of @p rank inside its S-group, 0..size(s)-1 (the split key).
  int group_rank(int rank, const AxisSet& s) const;
  /// The members of S-group @p index, in increasing group-local rank.
  std::vector<int> group(const AxisSet& s, int index) const;
  /// The members of @p rank's S-group.
  std::vector<int> group_of(int rank, const AxisSet& s) const { return group(s, group_index(rank, s)); }
  /// Every S-group, in group-index order.
  std::vector<std::vector<int>> groups(const AxisSet& s) const;

 private:
  /// The number whose digits are @p c's coordinates on the axes of @p s, leftmost-fastest.
  int mixed_radix(const AxisArray& c, const AxisSet& s) const;

  AxisArray sizes_{};
  AxisArray strides_{};
  std::vector<Axis> order_;
  int world_size_ = 1;
};

/// The groups of every non-empty set of axes (AxisSet::all() order, so all 31 keys, axes of
/// size 1 included), as the JSON object of docs/reference.md, "The process grid":
/// {"tp": [[0,1],[2,3]], ...}.
nlohmann::ordered_json groups_json(const ProcessGrid& grid);

/// groups_json() as text with one key per line (what `ch07_hybrid_parallel --print-groups`
/// prints), ending with a newline.
std::string groups_json_text(const ProcessGrid& grid);

}  // namespace fivefold
