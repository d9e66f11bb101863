// SPDX-License-Identifier: MIT
// Unit tests of the counter-based RNG: Philox known answers, the slicing property (any block
// equals the same block of the full draw, bitwise), independence of names and seeds, ranges and
// moments, and fixed values so that any change of the generator is noticed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "common/rng.hpp"

namespace fivefold {
namespace {

using rng::Dist;

/// Bitwise equality of two fp32 values (so -0.0 != 0.0 and NaN == NaN of the same bits).
bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// Element (i, j, k) of a row-major host tensor of shape @p s (rank 2 uses k = 0 and s[2] = 1).
float at3(const Tensor& t, std::int64_t i, std::int64_t j, std::int64_t k) {
  const Shape& s = t.shape();
  const std::int64_t d1 = s[1], d2 = s.size() > 2 ? s[2] : 1;
  return t.at<float>((i * d1 + j) * d2 + k);
}

TEST(Rng, PhiloxKnownAnswers) {
  // Known-answer vectors of Philox-4x32-10 published with Random123 (kat_vectors).
  using A4 = std::array<std::uint32_t, 4>;
  EXPECT_EQ(rng::philox4x32_10({0, 0, 0, 0}, {0, 0}), (A4{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(rng::philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}),
            (A4{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(rng::philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}),
            (A4{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(Rng, Fnv1aKnownAnswers) {
  EXPECT_EQ(rng::hash_name(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(rng::hash_name("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(rng::hash_name("foobar"), 0x85944171f73967e8ull);
}

TEST(Rng, FixedValuesRegression) {
  // If any of these change, every initial weight of every chapter changes: do it on purpose only.
  // Uniforms and integers are exact; normals go through libm's log/cos, so allow a last-bit
  // difference between C libraries.
  EXPECT_EQ(rng::uniform(1234, "embed_tokens.weight", 0), 0x1.0a494p-6f);  // 0.0162528157
  EXPECT_EQ(rng::uniform(1234, "embed_tokens.weight", 123456789), 0x1.a17132p-1f);  // 0.815316737
  EXPECT_NEAR(rng::normal(1234, "layers.0.self_attn.q_proj.weight", 7), -0.257537782, 1e-7);
  EXPECT_EQ(rng::integer(42, "tokens", 5, 1000), 240);
}

TEST(Rng, UniformIsOn24BitGrid) {
  for (std::int64_t i = 0; i < 10000; ++i) {
    const float u = rng::uniform(7, "grid", i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    const float scaled = u * 16777216.0f;  // exact: u = k * 2^-24
    ASSERT_EQ(scaled, std::floor(scaled)) << "index " << i;
  }
}

TEST(Rng, BlockEqualsSliceOfFull2D) {
  const Shape full{13, 17};
  for (Dist dist : {Dist::uniform, Dist::normal}) {
    const Tensor all = rng::draw(5, "w2d", full, dist, -0.5f, 2.0f);
    const Shape starts_list[] = {{0, 0}, {3, 5}, {12, 16}, {4, 0}, {0, 9}};
    const Shape sizes_list[] = {{13, 17}, {6, 7}, {1, 1}, {5, 17}, {13, 8}};
    for (int b = 0; b < 5; ++b) {
      const Shape& st = starts_list[b];
      const Shape& sz = sizes_list[b];
      const Tensor blk = rng::draw_block(5, "w2d", full, st, sz, dist, -0.5f, 2.0f);
      ASSERT_EQ(blk.shape(), sz);
      for (std::int64_t i = 0; i < sz[0]; ++i)
        for (std::int64_t j = 0; j < sz[1]; ++j)
          ASSERT_TRUE(same_bits(at3(blk, i, j, 0), at3(all, st[0] + i, st[1] + j, 0)))
              << "block " << b << " element (" << i << ", " << j << ")";
    }
  }
}

TEST(Rng, BlockEqualsSliceOfFull3D) {
  const Shape full{4, 6, 10};
  const Tensor all = rng::draw(99, "w3d", full, Dist::normal, 0.0f, 0.02f);
  // Every split of each dimension into two (and a middle block), like shards of any layout.
  const Shape starts_list[] = {{0, 0, 0}, {2, 0, 0}, {0, 3, 0}, {0, 0, 5}, {1, 2, 3}, {3, 5, 9}};
  const Shape sizes_list[] = {{2, 6, 10}, {2, 6, 10}, {4, 3, 10}, {4, 6, 5}, {2, 3, 4}, {1, 1, 1}};
  for (int b = 0; b < 6; ++b) {
    const Shape& st = starts_list[b];
    const Shape& sz = sizes_list[b];
    const Tensor blk = rng::draw_block(99, "w3d", full, st, sz, Dist::normal, 0.0f, 0.02f);
    for (std::int64_t i = 0; i < sz[0]; ++i)
      for (std::int64_t j = 0; j < sz[1]; ++j)
        for (std::int64_t k = 0; k < sz[2]; ++k)
          ASSERT_TRUE(same_bits(at3(blk, i, j, k), at3(all, st[0] + i, st[1] + j, st[2] + k)))
              << "block " << b << " element (" << i << ", " << j << ", " << k << ")";
  }
}

TEST(Rng, DrawMatchesScalarFunctions) {
  const Tensor u = rng::draw(3, "s", {50}, Dist::uniform, 0.0f, 1.0f);
  const Tensor z = rng::draw(3, "s", {50}, Dist::normal, 0.0f, 1.0f);
  for (std::int64_t i = 0; i < 50; ++i) {
    EXPECT_TRUE(same_bits(u.at<float>(i), rng::uniform(3, "s", i)));
    EXPECT_TRUE(same_bits(z.at<float>(i), rng::normal(3, "s", i)));
  }
  // Affine maps: uniform in [lo, hi), normal with mean lo and std hi.
  const Tensor u2 = rng::draw(3, "s", {50}, Dist::uniform, -2.0f, 6.0f);
  const Tensor z2 = rng::draw(3, "s", {50}, Dist::normal, 1.0f, 0.5f);
  for (std::int64_t i = 0; i < 50; ++i) {
    EXPECT_FLOAT_EQ(u2.at<float>(i), -2.0f + 8.0f * u.at<float>(i));
    EXPECT_FLOAT_EQ(z2.at<float>(i), 1.0f + 0.5f * z.at<float>(i));
  }
}

TEST(Rng, NamesAndSeedsGiveDifferentStreams) {
  const Tensor a = rng::draw(1, "layers.0.mlp.up_proj.weight", {64}, Dist::uniform, 0, 1);
  const Tensor b = rng::draw(1, "layers.1.mlp.up_proj.weight", {64}, Dist::uniform, 0, 1);
  const Tensor c = rng::draw(2, "layers.0.mlp.up_proj.weight", {64}, Dist::uniform, 0, 1);
  int same_ab = 0, same_ac = 0;
  for (std::int64_t i = 0; i < 64; ++i) {
    same_ab += a.at<float>(i) == b.at<float>(i);
    same_ac += a.at<float>(i) == c.at<float>(i);
  }
  EXPECT_LE(same_ab, 1);
  EXPECT_LE(same_ac, 1);
  // Neighbouring elements differ too (the counter really advances).
  EXPECT_NE(a.at<float>(0), a.at<float>(1));
}

TEST(Rng, UniformAndNormalMoments) {
  const std::int64_t n = 100000;
  double su = 0, su2 = 0, sz = 0, sz2 = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double u = rng::uniform(11, "moments", i);
    const double z = rng::normal(11, "moments", i);
    ASSERT_TRUE(std::isfinite(z));
    su += u;
    su2 += u * u;
    sz += z;
    sz2 += z * z;
  }
  const double mu = su / n, vu = su2 / n - mu * mu;
  const double mz = sz / n, sdz = std::sqrt(sz2 / n - mz * mz);
  // Standard errors: uniform mean 0.0009, normal mean 0.003, normal std 0.0022; allow ~5 sigma.
  EXPECT_NEAR(mu, 0.5, 0.005);
  EXPECT_NEAR(vu, 1.0 / 12.0, 0.002);
  EXPECT_NEAR(mz, 0.0, 0.015);
  EXPECT_NEAR(sdz, 1.0, 0.012);
}

TEST(Rng, IntegerRangeAndSpread) {
  const std::int32_t n = 10;
  std::vector<int> count(n, 0);
  for (std::int64_t i = 0; i < 20000; ++i) {
    const std::int32_t v = rng::integer(5, "tokens", i, n);
    ASSERT_GE(v, 0);
    ASSERT_LT(v, n);
    ++count[static_cast<std::size_t>(v)];
  }
  for (int c : count) EXPECT_NEAR(c, 2000, 200);  // ~4.7 sigma
  EXPECT_THROW(rng::integer(5, "tokens", 0, 0), Error);
}

TEST(Rng, BlockOutOfRangeThrows) {
  EXPECT_THROW(rng::draw_block(1, "w", {4, 4}, {2, 0}, {3, 4}, Dist::uniform, 0, 1), Error);
  EXPECT_THROW(rng::draw_block(1, "w", {4, 4}, {0}, {4}, Dist::uniform, 0, 1), Error);
  const Tensor empty = rng::draw_block(1, "w", {4, 4}, {4, 0}, {0, 4}, Dist::uniform, 0, 1);
  EXPECT_EQ(empty.numel(), 0);
}

}  // namespace
}  // namespace fivefold
