// SPDX-License-Identifier: MIT
/// @file rng.hpp
/// @brief Counter-based random numbers keyed by (seed, tensor name, element index).
///
/// Element i of tensor "name" is a pure function of (seed, name, i): no state, no order.
/// So a shard drawn directly equals the same slice of the full tensor, on every backend and
/// world size — which is what lets every parallel layout start from identical weights.
/// The generator is Philox-4x32-10 (Salmon et al., SC'11) keyed by the seed and a 64-bit
/// FNV-1a hash of the name; normals use Box-Muller on two uniforms of the same counter.
/// Precisely: Philox key = the seed, counter = (index low, index high, hash low, hash high);
/// uniform = (word 0 >> 8) * 2^-24, normal = Box-Muller on words 0 and 1 of that block.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/tensor.hpp"

namespace fivefold::rng {

/// One Philox-4x32-10 block: 10 rounds over the 128-bit @p counter under the 64-bit @p key.
/// Exposed so tests can check it against the published known-answer vectors (Random123).
std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> counter,
                                           std::array<std::uint32_t, 2> key);
/// 64-bit FNV-1a hash of @p s (the name part of the key).
std::uint64_t hash_name(const std::string& s);
/// Uniform in [0, 1) for element @p index of tensor @p name.
float uniform(std::uint64_t seed, const std::string& name, std::int64_t index);
/// Standard normal for element @p index of tensor @p name.
float normal(std::uint64_t seed, const std::string& name, std::int64_t index);
/// Integer in [0, n) for element @p index of stream @p name (for tokens).
std::int32_t integer(std::uint64_t seed, const std::string& name, std::int64_t index, std::int32_t n);

/// Distribution of a draw.
enum class Dist { uniform, normal };

/// Draws the block of a tensor of @p full_shape that starts at @p starts and has the shape
/// @p sizes (same rank), as a host fp32 tensor of shape @p sizes. Element values are
/// lo + (hi-lo)*u for Dist::uniform and lo + hi*z (mean lo, std hi) for Dist::normal, where
/// u/z are drawn at the element's flat index in the FULL tensor.
Tensor draw_block(std::uint64_t seed, const std::string& name, const Shape& full_shape,
                  const Shape& starts, const Shape& sizes, Dist dist, float lo, float hi);

/// The whole tensor (draw_block with starts 0 and sizes = full_shape).
Tensor draw(std::uint64_t seed, const std::string& name, const Shape& shape, Dist dist, float lo, float hi);

}  // namespace fivefold::rng
