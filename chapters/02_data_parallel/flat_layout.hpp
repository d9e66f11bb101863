// SPDX-License-Identifier: MIT
/// @file flat_layout.hpp
/// @brief Where every parameter lives in one flat fp32 buffer, and which contiguous slice of it
/// each of n data-parallel ranks owns (the ZeRO partition).
///
/// The model is cut into units, the pieces that are used together: the embedding, each decoder
/// layer, and the head (final norm + lm_head). Units sit in registration order (docs/reference.md,
/// "The reference model").
/// The buffer is made of segments, each padded with zeros to a multiple of n so that every rank
/// owns exactly padded/n elements of it (collectives need equal blocks):
/// - one segment holding every unit (DDP and ZeRO-1: one reduce-scatter, one all-gather);
/// - one segment per unit (ZeRO-2 and ZeRO-3: a unit is reduce-scattered, or gathered, alone).
///
///   per_unit = false:  | embed | layers.0 | layers.1 | head |pad|        rank r owns 1/n of it
///   per_unit = true:   | embed |pad| layers.0 |pad| layers.1 |pad| head |pad|   1/n of each
///
/// What it leaves out: splitting one unit across buckets, mixed dtypes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/ops.hpp"
#include "common/model_config.hpp"
#include "nn/params.hpp"

namespace fivefold::ch02 {

/// Parameters that are used together (gathered together in ZeRO-3).
struct Unit {
  std::string name;                   ///< "embed", "layers.0", ..., "head"
  std::vector<nn::ParamSpec> params;  ///< in registration order
  std::int64_t numel = 0;             ///< total elements of the unit
};

/// The units of the model of @p cfg: embed | layers.0 .. layers.L-1 | head, in registration order.
std::vector<Unit> model_units(const ModelConfig& cfg);

/// @p x rounded up to a multiple of @p n.
std::int64_t round_up(std::int64_t x, std::int64_t n);

/// A run of consecutive units padded to a multiple of n: the unit of a collective.
struct Segment {
  int first_unit = 0;             ///< first unit in the segment
  int last_unit = 0;              ///< last unit in the segment (inclusive)
  std::int64_t offset = 0;        ///< start in the flat buffer
  std::int64_t numel = 0;         ///< parameter elements (no padding)
  std::int64_t padded = 0;        ///< numel rounded up to a multiple of n
  std::int64_t shard_offset = 0;  ///< start of this segment's slice in a rank's shard buffer
  /// Elements each rank owns of this segment (padded / n).
  std::int64_t shard(int n) const { return padded / n; }
};

/// The flat buffer layout for n ranks (see the file comment).
class FlatLayout {
 public:
  /// Units of @p units over @p n ranks; @p per_unit: one segment per unit, else one for all.
  FlatLayout(std::vector<Unit> units, int n, bool per_unit);
  /// Number of ranks.
  int n() const { return n_; }
  /// True when every unit is its own segment.
  bool per_unit() const { return per_unit_; }
  /// Number of units.
  int num_units() const { return static_cast<int>(units_.size()); }
  /// Unit @p u.
  const Unit& unit(int u) const { return units_.at(u); }
  /// The segments, in buffer order.
  const std::vector<Segment>& segments() const { return segments_; }
  /// The segment holding unit @p u.
  const Segment& segment_of(int u) const;
  /// Ψ: parameter elements of the model (no padding).
  std::int64_t numel() const { return numel_; }
  /// Length of the flat buffer, padding included (sum of padded segments).
  std::int64_t padded() const { return padded_; }
  /// Elements one rank owns: padded() / n.
  std::int64_t shard() const { return padded_ / n_; }
  /// Largest padded segment (size of a ZeRO-3 gather workspace).
  std::int64_t max_padded() const;
  /// Start of unit @p u in the flat buffer.
  std::int64_t offset(int u) const { return offsets_.at(u); }
  /// Start of unit @p u in the dense (unpadded, registration-order) concatenation.
  std::int64_t dense_offset(int u) const { return dense_offsets_.at(u); }

  /// The dense [Ψ] concatenation of every parameter, from a flat buffer [padded()] (a copy).
  Tensor to_dense(Ops& ops, const Tensor& flat) const;
  /// Rank @p r's shard [shard()] of the initial parameters, drawn directly from the seed with
  /// param_init_block (the slicing property: equal to the slice of the full initialisation);
  /// padding is zero. Host tensor.
  Tensor init_shard(std::uint64_t seed, int r) const;
  /// The full initial flat buffer [padded()] (padding zero). Host tensor.
  Tensor init_full(std::uint64_t seed) const;

 private:
  std::vector<Unit> units_;
  int n_;
  bool per_unit_;
  std::vector<Segment> segments_;
  std::vector<int> segment_of_;
  std::vector<std::int64_t> offsets_, dense_offsets_;
  std::int64_t numel_ = 0, padded_ = 0;
};

/// How a global batch of @p batch sequences is split over @p n ranks: rank r gets count(r)
/// consecutive sequences starting at offset(r); the first batch % n ranks get one more.
struct BatchSplit {
  int batch = 0;  ///< B
  int n = 1;      ///< ranks
  /// Sequences of rank @p r.
  int count(int r) const { return batch / n + (r < batch % n ? 1 : 0); }
  /// First sequence of rank @p r within the global batch.
  int offset(int r) const { return r * (batch / n) + (r < batch % n ? r : batch % n); }
  /// count(r) / B: the weight of rank r's mean loss in the global mean (1/n when even).
  double weight(int r) const { return static_cast<double>(count(r)) / batch; }
  /// True when every rank gets the same number of sequences.
  bool even() const { return batch % n == 0; }
};

}  // namespace fivefold::ch02
