// SPDX-License-Identifier: MIT
// ProcessGrid: sizes and order validated with one-line errors, rank <-> coordinates as a
// mixed-radix number (leftmost axis of the order = least significant digit), and groups.
#include "common/process_grid.hpp"

#include <algorithm>
#include <climits>
#include <sstream>

#include "common/check.hpp"

namespace fivefold {

namespace {

constexpr const char* kAxisList = "tp, sp (or cp), ep, dp, pp";

std::vector<std::string> split_dashes(const std::string& s) {
  std::vector<std::string> parts;
  std::string cur;
  for (char ch : s) {
    if (ch == '-') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  parts.push_back(cur);
  return parts;
}

/// The option that sets axis @p a ("--sp (or --cp)" for sp).
std::string flag_of(Axis a) {
  return a == Axis::sp ? std::string("--sp (or --cp)") : std::string("--") + axis_name(a);
}

}  // namespace

const char* axis_name(Axis a) {
  static const char* names[kNumAxes] = {"tp", "sp", "ep", "dp", "pp"};
  return names[static_cast<int>(a)];
}

Axis parse_axis(const std::string& name) {
  if (name == "cp") return Axis::sp;  // context parallelism: the sequence axis under another name
  for (Axis a : kAllAxes)
    if (name == axis_name(a)) return a;
  throw UsageError("unknown axis '" + name + "'; the axes are " + kAxisList);
}

AxisSet::AxisSet(std::initializer_list<Axis> axes) {
  for (Axis a : axes) bits_ |= 1u << static_cast<int>(a);
}

AxisSet AxisSet::from_bits(unsigned bits) {
  AxisSet s;
  s.bits_ = bits & ((1u << kNumAxes) - 1);
  return s;
}

AxisSet AxisSet::parse(const std::string& spec) {
  AxisSet s;
  for (const std::string& part : split_dashes(spec)) {
    Axis a;
    try {
      a = parse_axis(part);
    } catch (const UsageError& e) {
      throw UsageError("axis set '" + spec + "': " + e.what());
    }
    FIVEFOLD_USAGE_CHECK(!s.contains(a), "axis set '", spec, "': axis ", axis_name(a),
                         " appears twice (cp is another name for sp); name each axis once");
    s.bits_ |= 1u << static_cast<int>(a);
  }
  return s;
}

std::vector<AxisSet> AxisSet::all() {
  std::vector<AxisSet> out;
  for (int n = 1; n <= kNumAxes; ++n) {
    // Sets of n axes in canonical order: lexicographic on the canonical positions, i.e. the
    // bit patterns whose lowest differing bit is set first.
    std::vector<AxisSet> same;
    for (unsigned b = 1; b < (1u << kNumAxes); ++b)
      if (from_bits(b).count() == n) same.push_back(from_bits(b));
    std::sort(same.begin(), same.end(), [](const AxisSet& x, const AxisSet& y) {
      const std::vector<Axis> ax = x.axes(), ay = y.axes();
      return std::lexicographical_compare(ax.begin(), ax.end(), ay.begin(), ay.end());
    });
    out.insert(out.end(), same.begin(), same.end());
  }
  return out;
}

int AxisSet::count() const {
  int n = 0;
  for (Axis a : kAllAxes) n += contains(a) ? 1 : 0;
  return n;
}

std::vector<Axis> AxisSet::axes() const {
  std::vector<Axis> out;
  for (Axis a : kAllAxes)
    if (contains(a)) out.push_back(a);
  return out;
}

std::string AxisSet::name() const {
  std::string out;
  for (Axis a : axes()) out += (out.empty() ? "" : "-") + std::string(axis_name(a));
  return out;
}

std::vector<Axis> parse_order(const std::string& order) {
  std::vector<Axis> out;
  AxisSet seen;
  for (const std::string& part : split_dashes(order)) {
    Axis a;
    try {
      a = parse_axis(part);
    } catch (const UsageError& e) {
      throw UsageError("--order " + order + ": " + e.what());
    }
    FIVEFOLD_USAGE_CHECK(!seen.contains(a), "--order ", order, ": axis ", axis_name(a), " appears twice",
                         a == Axis::sp ? " (cp is another name for sp)" : "", "; list each of ", kAxisList,
                         " once, fastest first (e.g. ", kDefaultOrder, ")");
    seen = AxisSet::from_bits(seen.bits() | AxisSet{a}.bits());
    out.push_back(a);
  }
  std::string missing;
  for (Axis a : seen.complement().axes()) missing += (missing.empty() ? "" : ", ") + std::string(axis_name(a));
  FIVEFOLD_USAGE_CHECK(missing.empty(), "--order ", order, ": ", missing,
                       " missing; list all five axes, fastest first (e.g. ", kDefaultOrder, ")");
  return out;
}

ProcessGrid::ProcessGrid(const AxisArray& sizes, const std::string& order, int world_size) : sizes_(sizes) {
  for (Axis a : kAllAxes)
    FIVEFOLD_USAGE_CHECK(size(a) >= 1, axis_name(a), " size ", size(a),
                         " is not allowed: every degree must be >= 1; pass ", flag_of(a), " 1 or more");
  order_ = parse_order(order);
  std::int64_t product = 1;
  for (Axis a : kAllAxes) product = std::min<std::int64_t>(product * size(a), std::int64_t{INT_MAX} + 1);
  world_size_ = static_cast<int>(std::min<std::int64_t>(product, INT_MAX));
  FIVEFOLD_USAGE_CHECK(product == world_size, sizes_text(), " = ", product, " ranks, but the world has ", world_size,
                       "; pick degrees whose product tp*sp*ep*dp*pp is ", world_size);
  // TUTORIAL: the stride of an axis is the product of the sizes of the axes left of it.
  int stride = 1;
  for (Axis a : order_) {
    strides_[static_cast<int>(a)] = stride;
    stride *= size(a);
  }
}

int ProcessGrid::size(const AxisSet& s) const {
  int n = 1;
  for (Axis a : s.axes()) n *= size(a);
  return n;
}

std::string ProcessGrid::order_name() const {
  std::string out;
  for (Axis a : order_) out += (out.empty() ? "" : "-") + std::string(axis_name(a));
  return out;
}

std::string ProcessGrid::sizes_text() const {
  std::ostringstream os;
  for (Axis a : kAllAxes) os << (a == Axis::tp ? "" : " x ") << axis_name(a) << ' ' << size(a);
  return os.str();
}

std::string ProcessGrid::describe() const {
  return sizes_text() + " = " + std::to_string(world_size_) + " ranks, order " + order_name();
}

AxisArray ProcessGrid::coords(int rank) const {
  FIVEFOLD_CHECK(rank >= 0 && rank < world_size_, "rank ", rank, " is outside the grid of ", world_size_, " ranks");
  AxisArray c{};
  for (Axis a : order_) {  // TUTORIAL: the fastest axis is the lowest digit
    c[static_cast<int>(a)] = rank % size(a);
    rank /= size(a);
  }
  return c;
}

int ProcessGrid::rank_of(const AxisArray& c) const {
  int rank = 0;
  for (Axis a : kAllAxes) {
    const int i = static_cast<int>(a);
    FIVEFOLD_CHECK(c[i] >= 0 && c[i] < sizes_[i], axis_name(a), " coordinate ", c[i], " is outside 0..",
                   sizes_[i] - 1);
    rank += c[i] * strides_[i];
  }
  return rank;
}

int ProcessGrid::mixed_radix(const AxisArray& c, const AxisSet& s) const {
  int value = 0, weight = 1;
  for (Axis a : order_) {
    if (!s.contains(a)) continue;
    value += c[static_cast<int>(a)] * weight;
    weight *= size(a);
  }
  return value;
}

int ProcessGrid::group_index(int rank, const AxisSet& s) const { return mixed_radix(coords(rank), s.complement()); }

int ProcessGrid::group_rank(int rank, const AxisSet& s) const { return mixed_radix(coords(rank), s); }

std::vector<int> ProcessGrid::group(const AxisSet& s, int index) const {
  FIVEFOLD_CHECK(index >= 0 && index < num_groups(s), "group ", index, " of ", s.name(), " is outside 0..",
                 num_groups(s) - 1);
  // Fill the other axes' coordinates from the group index, then walk the group's own axes.
  AxisArray c{};
  for (Axis a : order_) {
    if (s.contains(a)) continue;
    c[static_cast<int>(a)] = index % size(a);
    index /= size(a);
  }
  std::vector<int> members;
  for (int local = 0; local < size(s); ++local) {
    int rest = local;
    for (Axis a : order_) {
      if (!s.contains(a)) continue;
      c[static_cast<int>(a)] = rest % size(a);
      rest /= size(a);
    }
    members.push_back(rank_of(c));
  }
  return members;
}

std::vector<std::vector<int>> ProcessGrid::groups(const AxisSet& s) const {
  std::vector<std::vector<int>> out;
  for (int g = 0; g < num_groups(s); ++g) out.push_back(group(s, g));
  return out;
}

nlohmann::ordered_json groups_json(const ProcessGrid& grid) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const AxisSet& s : AxisSet::all()) j[s.name()] = grid.groups(s);
  return j;
}

std::string groups_json_text(const ProcessGrid& grid) {
  const nlohmann::ordered_json j = groups_json(grid);
  std::string out = "{\n";
  std::size_t i = 0;
  for (const auto& [key, value] : j.items()) {
    out += "  " + nlohmann::ordered_json(key).dump() + ": " + value.dump();
    out += ++i < j.size() ? ",\n" : "\n";
  }
  return out + "}\n";
}

}  // namespace fivefold
