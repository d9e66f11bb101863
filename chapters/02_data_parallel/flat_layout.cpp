// SPDX-License-Identifier: MIT
// The flat buffer layout: units, segments padded to a multiple of n, shards, initialisation of
// a shard straight from the seed.
#include "chapters/02_data_parallel/flat_layout.hpp"

#include <algorithm>

#include "common/check.hpp"

namespace fivefold::ch02 {

std::vector<Unit> model_units(const ModelConfig& cfg) {
  std::vector<Unit> units;
  auto unit_for = [&](const std::string& name) -> Unit& {
    if (units.empty() || units.back().name != name) units.push_back(Unit{name, {}, 0});
    return units.back();
  };
  for (const nn::ParamSpec& p : nn::model_param_specs(cfg)) {
    std::string name = "head";  // norm.weight, lm_head.weight
    if (p.name.rfind("embed_tokens.", 0) == 0) name = "embed";
    if (p.name.rfind("layers.", 0) == 0) name = p.name.substr(0, p.name.find('.', 7));  // "layers.<l>"
    Unit& u = unit_for(name);
    u.params.push_back(p);
    u.numel += shape_numel(p.shape);
  }
  return units;
}

std::int64_t round_up(std::int64_t x, std::int64_t n) { return (x + n - 1) / n * n; }

FlatLayout::FlatLayout(std::vector<Unit> units, int n, bool per_unit)
    : units_(std::move(units)), n_(n), per_unit_(per_unit) {
  FIVEFOLD_CHECK(n >= 1 && !units_.empty(), "FlatLayout: need n >= 1 (got ", n, ") and at least one unit");
  const int U = num_units();
  for (int u = 0; u < U; ++u) {
    dense_offsets_.push_back(numel_);
    numel_ += units_[u].numel;
  }
  // TUTORIAL: a segment is padded with zeros to a multiple of n, so each rank owns padded/n.
  auto close = [&](int first, int last) {
    Segment s;
    s.first_unit = first;
    s.last_unit = last;
    s.offset = padded_;
    for (int u = first; u <= last; ++u) s.numel += units_[u].numel;
    s.padded = round_up(s.numel, n_);
    s.shard_offset = padded_ / n_;
    std::int64_t at = s.offset;
    for (int u = first; u <= last; ++u) {
      offsets_.push_back(at);
      segment_of_.push_back(static_cast<int>(segments_.size()));
      at += units_[u].numel;
    }
    padded_ += s.padded;
    segments_.push_back(s);
  };
  if (per_unit) {
    for (int u = 0; u < U; ++u) close(u, u);
  } else {
    close(0, U - 1);
  }
}

const Segment& FlatLayout::segment_of(int u) const { return segments_.at(segment_of_.at(u)); }

std::int64_t FlatLayout::max_padded() const {
  std::int64_t m = 0;
  for (const Segment& s : segments_) m = std::max(m, s.padded);
  return m;
}

Tensor FlatLayout::to_dense(Ops& ops, const Tensor& flat) const {
  FIVEFOLD_CHECK(flat.numel() == padded_, "to_dense: flat buffer ", flat.str(), " must have ", padded_, " elements");
  Tensor out = ops.empty({numel_});  // [Ψ]
  for (int u = 0; u < num_units(); ++u)
    out.flat(dense_offsets_[u], units_[u].numel).copy_from(flat.flat(offsets_[u], units_[u].numel));
  return out;
}

Tensor FlatLayout::init_shard(std::uint64_t seed, int r) const {
  FIVEFOLD_CHECK(r >= 0 && r < n_, "init_shard: rank ", r, " outside 0..", n_ - 1);
  Tensor out = Tensor::zeros({shard()});  // padding stays zero
  for (const Segment& s : segments_) {
    const std::int64_t lo = s.offset + r * s.shard(n_), hi = lo + s.shard(n_);  // owned, in flat coordinates
    for (int u = s.first_unit; u <= s.last_unit; ++u) {
      std::int64_t at = offsets_[u];
      for (const nn::ParamSpec& p : units_[u].params) {
        const std::int64_t len = shape_numel(p.shape), a = std::max(lo, at), b = std::min(hi, at + len);
        if (a < b) {
          // TUTORIAL: draw only the owned elements: a 1-D block [a-at, b-at) of the flattened
          // parameter has the same values as that slice of the full initialisation.
          Tensor block = nn::param_init_block(seed, p.name, {len}, {a - at}, {b - a});
          out.flat(s.shard_offset + (a - lo), b - a).copy_from(block);
        }
        at += len;
      }
    }
  }
  return out;
}

Tensor FlatLayout::init_full(std::uint64_t seed) const {
  Tensor out = Tensor::zeros({padded_});
  for (int u = 0; u < num_units(); ++u) {
    std::int64_t at = offsets_[u];
    for (const nn::ParamSpec& p : units_[u].params) {
      const std::int64_t len = shape_numel(p.shape);
      out.flat(at, len).copy_from(nn::param_init(seed, p.name, p.shape));
      at += len;
    }
  }
  return out;
}

}  // namespace fivefold::ch02
