// SPDX-License-Identifier: MIT
// The index map of every mode and the layout rules.
#include "chapters/05_sequence_parallel/sp_layout.hpp"

#include <algorithm>

#include "common/check.hpp"

namespace fivefold::ch05 {

std::string sp_mode_name(SpMode m) {
  switch (m) {
    case SpMode::megatron: return "megatron";
    case SpMode::ulysses: return "ulysses";
    case SpMode::ring: return "ring";
    case SpMode::zigzag: return "zigzag";
  }
  return "?";
}

std::vector<SpMode> all_sp_modes() { return {SpMode::megatron, SpMode::ulysses, SpMode::ring, SpMode::zigzag}; }

SpMode parse_sp_mode(const std::string& name) {
  for (SpMode m : all_sp_modes())
    if (sp_mode_name(m) == name) return m;
  throw UsageError("--sp-mode " + name + " is not a mode; pass megatron, ulysses, ring or zigzag");
}

std::vector<Segment> local_segments(SpMode mode, std::int64_t T, int sp, int r) {
  if (mode == SpMode::zigzag) {
    const std::int64_t c = T / (2 * sp);  // TUTORIAL: one early chunk and its mirror image
    return {{r * c, c}, {(2 * sp - 1 - r) * c, c}};
  }
  const std::int64_t n = T / sp;
  return {{r * n, n}};
}

std::vector<std::int32_t> local_positions(SpMode mode, std::int64_t T, int sp, int r) {
  std::vector<std::int32_t> pos;
  for (const Segment& s : local_segments(mode, T, sp, r))
    for (std::int64_t t = s.start; t < s.start + s.len; ++t) pos.push_back(static_cast<std::int32_t>(t));
  return pos;
}

std::vector<std::int32_t> gathered_positions(SpMode mode, std::int64_t T, int sp) {
  std::vector<std::int32_t> all;
  for (int r = 0; r < sp; ++r) {
    const std::vector<std::int32_t> p = local_positions(mode, T, sp, r);
    all.insert(all.end(), p.begin(), p.end());
  }
  return all;
}

nn::Batch local_batch(const nn::Batch& full, const std::vector<std::int32_t>& positions) {
  const Tensor in = full.inputs.to(Device::host), tg = full.targets.to(Device::host);
  const std::int64_t B = in.dim(0), T = in.dim(1), n = static_cast<std::int64_t>(positions.size());
  std::vector<std::int32_t> a(B * n), b(B * n);
  for (std::int64_t i = 0; i < B; ++i)
    for (std::int64_t j = 0; j < n; ++j) {  // TUTORIAL: inputs and targets by the same map, never shifted here
      a[i * n + j] = in.at<std::int32_t>(i * T + positions[j]);
      b[i * n + j] = tg.at<std::int32_t>(i * T + positions[j]);
    }
  return {Tensor::from_vector(a, {B, n}), Tensor::from_vector(b, {B, n})};
}

std::string check_layout(SpMode mode, const ModelConfig& cfg, int sp) {
  const std::string m = sp_mode_name(mode);
  if (cfg.experts > 0)
    return "--experts " + std::to_string(cfg.experts) + ": chapter 05 splits the sequence of the dense model "
           "(MoE layers are not split along the sequence here); pass --experts 0";
  const std::int64_t parts = mode == SpMode::zigzag ? 2 * sp : sp;
  if (cfg.seq % parts != 0)
    return "--seq " + std::to_string(cfg.seq) + " cannot be split by --sp-mode " + m + " over " +
           std::to_string(sp) + " ranks: it needs a multiple of " + std::to_string(parts) +
           (mode == SpMode::zigzag ? " (2 chunks per rank)" : "") + "; pass --seq " +
           std::to_string(std::max<std::int64_t>(parts, cfg.seq / parts * parts));
  if (mode == SpMode::ulysses && cfg.heads % sp != 0)
    return "Ulysses over " + std::to_string(sp) + " ranks needs --heads " + std::to_string(cfg.heads) +
           " divisible by " + std::to_string(sp) + " (each rank takes H/sp heads); use ring or zigzag, or another number of ranks";
  if (mode == SpMode::ulysses && cfg.kv_heads % sp != 0 && sp % cfg.kv_heads != 0)
    return "Ulysses over " + std::to_string(sp) + " ranks needs --kv-heads " + std::to_string(cfg.kv_heads) +
           " divisible by " + std::to_string(sp) + " or dividing it (whole kv heads, or each replicated to sp/Hkv ranks); "
           "use ring or zigzag, or another number of ranks";
  if (mode == SpMode::megatron) {
    for (const auto& [what, v] : {std::pair<const char*, int>{"--heads", cfg.heads}, {"--kv-heads", cfg.kv_heads},
                                  {"--ffn", cfg.ffn}, {"--vocab", cfg.vocab}})
      if (v % sp != 0)
        return "--sp-mode megatron splits the sequence over the tp group of " + std::to_string(sp) + " ranks, but " +
               what + " " + std::to_string(v) + " is not divisible by it; run on a number of ranks that divides " + what;
  }
  return "";
}

KvHeads ulysses_kv_heads(int kv_heads, int sp, int j) {
  return {static_cast<int>(static_cast<std::int64_t>(j) * kv_heads / sp), std::max(1, kv_heads / sp)};
}

}  // namespace fivefold::ch05
