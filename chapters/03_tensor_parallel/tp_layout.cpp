// SPDX-License-Identifier: MIT
// The TP layout: valid degrees, the split of each parameter, and this rank's shards.
#include "chapters/03_tensor_parallel/tp_layout.hpp"

#include "common/check.hpp"

namespace fivefold::ch03 {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

const char* split_name(Split s) {
  switch (s) {
    case Split::rows: return "rows";
    case Split::cols: return "cols";
    default: return "replicated";
  }
}

Split split_of(const std::string& name) {
  if (ends_with(name, "norm.weight")) return Split::replicated;
  if (ends_with(name, "o_proj.weight") || ends_with(name, "down_proj.weight")) return Split::cols;  // row-parallel
  return Split::rows;  // embedding, lm_head, q/k/v, gate/up: split by output rows (column-parallel)
}

Shape shard_shape(const Shape& full, Split s, int tp) {
  Shape out = full;
  if (s == Split::rows) out.front() /= tp;
  if (s == Split::cols) out.back() /= tp;
  return out;
}

Shape shard_starts(const Shape& full, Split s, int rank, int tp) {
  Shape st(full.size(), 0);
  if (s == Split::rows) st.front() = rank * (full.front() / tp);
  if (s == Split::cols) st.back() = rank * (full.back() / tp);
  return st;
}

std::vector<int> valid_tp_degrees(const ModelConfig& cfg) {
  std::vector<int> out;
  for (int d = 1; d <= cfg.kv_heads; ++d)
    if (cfg.heads % d == 0 && cfg.kv_heads % d == 0 && cfg.ffn % d == 0 && cfg.vocab % d == 0) out.push_back(d);
  return out;
}

std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s;
}

void validate_tp(const ModelConfig& cfg, int tp, int world_size) {
  FIVEFOLD_USAGE_CHECK(tp >= 1, "--tp must be >= 1 (got ", tp, ")");
  const std::string valid = "; valid --tp for this model: " + join_ints(valid_tp_degrees(cfg));
  // TUTORIAL: each rank must own whole query heads, whole kv heads, and equal slices of F and V.
  const std::pair<const char*, int> dims[] = {{"--heads", cfg.heads},
                                              {"--kv-heads", cfg.kv_heads},
                                              {"--ffn", cfg.ffn},
                                              {"--vocab", cfg.vocab}};
  for (const auto& [opt, n] : dims)
    FIVEFOLD_USAGE_CHECK(n % tp == 0, "--tp ", tp, " does not divide ", opt, " ", n, valid);
  FIVEFOLD_USAGE_CHECK(world_size % tp == 0, "--tp ", tp, " does not divide the world size ", world_size,
                       "; run mpirun -np <a multiple of ", tp, "> or pass --tp dividing ", world_size);
}

TpParams::TpParams(Ops& ops, const ModelConfig& cfg, int rank, int tp) : nn::ParamRegistry(ops, cfg.seed) {
  FIVEFOLD_CHECK(cfg.experts == 0, "chapter 03 shards the dense model; got --experts ", cfg.experts);
  for (const nn::ParamSpec& spec : nn::model_param_specs(cfg)) {
    const Split s = split_of(spec.name);
    // TUTORIAL: draw only this rank's block; the RNG is keyed by the element's index in the FULL
    // tensor, so the shard is bit for bit the slice of the serial model's weight.
    add_block(spec.name, spec.shape, shard_starts(spec.shape, s, rank, tp), shard_shape(spec.shape, s, tp));
  }
}

}  // namespace fivefold::ch03
