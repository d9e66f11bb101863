// SPDX-License-Identifier: MIT
// The synthetic token stream (see data.hpp for the task).
#include "nn/data.hpp"

#include <cmath>
#include <vector>

#include "common/rng.hpp"

namespace fivefold::nn {

namespace {
constexpr double kNoise = 0.1;
}  // namespace

Batch synthetic_batch(std::uint64_t seed, int vocab, int batch, int seq, std::int64_t first_sequence) {
  std::vector<std::int32_t> in(static_cast<std::size_t>(batch) * seq), tg(in.size());
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int64_t s = first_sequence + b, base = s * (seq + 1);
    std::int32_t x = rng::integer(seed, "data.first", s, vocab);
    for (std::int64_t t = 1; t <= seq; ++t) {
      std::int32_t next = static_cast<std::int32_t>((3LL * x + 1) % vocab);  // the rule
      if (rng::uniform(seed, "data.noise", base + t) < kNoise) next = rng::integer(seed, "data.token", base + t, vocab);
      in[b * seq + t - 1] = x;
      tg[b * seq + t - 1] = next;
      x = next;
    }
  }
  return {Tensor::from_vector(in, {batch, seq}), Tensor::from_vector(tg, {batch, seq})};
}

double synthetic_entropy(int vocab) {
  const double hit = 1.0 - kNoise + kNoise / vocab, miss = kNoise / vocab;
  return -hit * std::log(hit) - (vocab - 1) * miss * std::log(miss);
}

Batch stream_batch(const ModelConfig& cfg, int k) {
  return synthetic_batch(cfg.seed, cfg.vocab, cfg.batch, cfg.seq, static_cast<std::int64_t>(k) * cfg.batch);
}

}  // namespace fivefold::nn
