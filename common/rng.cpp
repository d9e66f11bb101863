// SPDX-License-Identifier: MIT
// Counter-based random numbers: element i of tensor "name" under seed s is a pure function of
// (s, name, i). This is what makes a shard drawn on its own equal the slice of the full draw.
//
// Layout of one Philox-4x32-10 call (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC'11):
//   key     = the 64-bit seed                        (two 32-bit words, low word first)
//   counter = [index low, index high, hash low, hash high], hash = FNV-1a-64 of the name
// Every (seed, name, index) therefore names its own 128-bit block of random bits.
// uniform uses word 0, normal uses words 0 and 1 (Box-Muller), integer uses words 0 and 1.
#include "common/rng.hpp"

#include <cmath>

#include "common/check.hpp"

namespace fivefold::rng {

namespace {

constexpr std::uint32_t kMul0 = 0xD2511F53u;   // Philox multipliers
constexpr std::uint32_t kMul1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u;  // key schedule increments (golden ratio, sqrt(3)-1)
constexpr std::uint32_t kWeyl1 = 0xBB67AE85u;

/// The 128 random bits of element @p index of the stream whose name hashes to @p h.
std::array<std::uint32_t, 4> bits(std::uint64_t seed, std::uint64_t h, std::uint64_t index) {
  return philox4x32_10({static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
                        static_cast<std::uint32_t>(h), static_cast<std::uint32_t>(h >> 32)},
                       {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
}

/// 24 high bits as a float in [0, 1): every value k * 2^-24 is exactly representable.
float to_unit(std::uint32_t w) { return static_cast<float>(w >> 8) * (1.0f / 16777216.0f); }

/// Box-Muller on two words of one block; computed in double, rounded once to float.
float to_normal(std::uint32_t w0, std::uint32_t w1) {
  const double u1 = 1.0 - static_cast<double>(to_unit(w0));  // in (0, 1]: log never sees 0
  const double u2 = static_cast<double>(to_unit(w1));        // in [0, 1)
  const double two_pi = 6.283185307179586476925286766559;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2));
}

}  // namespace

std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> c, std::array<std::uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kMul0) * c[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kMul1) * c[2];
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k = {k[0] + kWeyl0, k[1] + kWeyl1};
  }
  return c;
}

std::uint64_t hash_name(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64-bit offset basis
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 0x100000001b3ull;  // FNV-1a 64-bit prime
  }
  return h;
}

float uniform(std::uint64_t seed, const std::string& name, std::int64_t index) {
  return to_unit(bits(seed, hash_name(name), static_cast<std::uint64_t>(index))[0]);
}

float normal(std::uint64_t seed, const std::string& name, std::int64_t index) {
  const auto b = bits(seed, hash_name(name), static_cast<std::uint64_t>(index));
  return to_normal(b[0], b[1]);
}

std::int32_t integer(std::uint64_t seed, const std::string& name, std::int64_t index, std::int32_t n) {
  FIVEFOLD_CHECK(n > 0, "rng::integer needs n > 0 (got ", n, ") for stream '", name, "'");
  const auto b = bits(seed, hash_name(name), static_cast<std::uint64_t>(index));
  // 64 random bits modulo n: the bias is below n / 2^64, far below anything measurable.
  const std::uint64_t bits = (static_cast<std::uint64_t>(b[1]) << 32) | b[0];
  return static_cast<std::int32_t>(bits % static_cast<std::uint64_t>(n));
}

Tensor draw_block(std::uint64_t seed, const std::string& name, const Shape& full_shape, const Shape& starts,
                  const Shape& sizes, Dist dist, float lo, float hi) {
  const std::size_t nd = full_shape.size();
  FIVEFOLD_CHECK(starts.size() == nd && sizes.size() == nd, "draw_block of '", name, "': starts ",
                 shape_str(starts), " and sizes ", shape_str(sizes), " must have the rank of ",
                 shape_str(full_shape));
  for (std::size_t d = 0; d < nd; ++d) {
    FIVEFOLD_CHECK(starts[d] >= 0 && sizes[d] >= 0 && starts[d] + sizes[d] <= full_shape[d], "draw_block of '",
                   name, "': block starts ", shape_str(starts), " sizes ", shape_str(sizes),
                   " does not fit in ", shape_str(full_shape), " (dimension ", d, ")");
  }
  Tensor out = Tensor::empty(sizes, DType::f32);
  const std::int64_t n = shape_numel(sizes);
  if (n == 0) return out;

  // Row-major strides of the full tensor.
  std::vector<std::int64_t> stride(nd, 1);
  for (std::size_t d = nd; d-- > 1;) stride[d - 1] = stride[d] * full_shape[d];
  // Walk the block in row-major order with an odometer over its coordinates.
  std::vector<std::int64_t> coord(nd, 0);
  std::int64_t full_index = 0;
  for (std::size_t d = 0; d < nd; ++d) full_index += starts[d] * stride[d];

  const std::uint64_t h = hash_name(name);
  float* dst = out.data<float>();
  for (std::int64_t k = 0; k < n; ++k) {
    const auto b = bits(seed, h, static_cast<std::uint64_t>(full_index));
    dst[k] = dist == Dist::uniform ? lo + (hi - lo) * to_unit(b[0]) : lo + hi * to_normal(b[0], b[1]);
    // Advance the odometer; when a coordinate wraps, jump the full index to the next row.
    for (std::size_t d = nd; d-- > 0;) {
      ++coord[d];
      full_index += stride[d];
      if (coord[d] < sizes[d]) break;
      full_index -= coord[d] * stride[d];
      coord[d] = 0;
    }
  }
  return out;
}

Tensor draw(std::uint64_t seed, const std::string& name, const Shape& shape, Dist dist, float lo, float hi) {
  return draw_block(seed, name, shape, Shape(shape.size(), 0), shape, dist, lo, hi);
}

}  // namespace fivefold::rng
