// SPDX-License-Identifier: MIT
// The communication and memory formulas of tensor parallelism (see tp_costs.hpp).
#include "chapters/03_tensor_parallel/tp_costs.hpp"

namespace fivefold::ch03 {

namespace {

std::int64_t tokens(const ModelConfig& cfg) { return static_cast<std::int64_t>(cfg.batch) * cfg.seq; }

}  // namespace

CommCost column_forward_cost() { return {}; }
CommCost column_backward_cost(std::int64_t n, std::int64_t in) { return all_reduce_of(n * in); }
CommCost row_forward_cost(std::int64_t n, std::int64_t out) { return all_reduce_of(n * out); }
CommCost row_backward_cost() { return {}; }
CommCost block_cost(std::int64_t n, std::int64_t c) { return all_reduce_of(n * c); }
CommCost embedding_forward_cost(std::int64_t n, std::int64_t c) { return all_reduce_of(n * c); }

CommCost loss_cost(std::int64_t n) {
  CommCost c;
  for (int i = 0; i < 3; ++i) c += all_reduce_of(n);  // max, sum of exponentials, target logit
  return c;
}

CommCost head_backward_cost(std::int64_t n, std::int64_t c) { return all_reduce_of(n * c); }

CommCost model_forward_cost(const ModelConfig& cfg) {
  const std::int64_t n = tokens(cfg), c = cfg.dim;
  CommCost t = embedding_forward_cost(n, c);
  for (int l = 0; l < cfg.layers; ++l) {
    t += block_cost(n, c);  // attention
    t += block_cost(n, c);  // MLP
  }
  t += loss_cost(n);
  return t;
}

CommCost model_backward_cost(const ModelConfig& cfg) {
  const std::int64_t n = tokens(cfg), c = cfg.dim;
  CommCost t = head_backward_cost(n, c);
  for (int l = 0; l < cfg.layers; ++l) {
    t += block_cost(n, c);
    t += block_cost(n, c);
  }
  return t;  // the embedding's backward needs no communication
}

CommCost generation_all_reduce_cost(const ModelConfig& cfg, std::int64_t batch, std::int64_t prompt,
                                    std::int64_t new_tokens) {
  CommCost t;
  for (std::int64_t s = 0; s < new_tokens; ++s) {
    const std::int64_t n = batch * (s == 0 ? prompt : 1);  // prefill, then one token per row
    t += embedding_forward_cost(n, cfg.dim);
    for (int l = 0; l < 2 * cfg.layers; ++l) t += block_cost(n, cfg.dim);
  }
  return t;
}

CommCost generation_all_gather_cost(std::int64_t batch, std::int64_t new_tokens) {
  return {new_tokens, new_tokens * 2 * batch * 4};
}

double ring_wire_bytes(double bytes, int tp) { return 2.0 * (tp - 1) / tp * bytes; }

std::int64_t params_per_rank(const ModelConfig& cfg, int tp) {
  const std::int64_t V = cfg.vocab, C = cfg.dim, hd = cfg.head_dim(), H = cfg.heads, Hkv = cfg.kv_heads,
                     F = cfg.ffn, L = cfg.layers;
  const std::int64_t split = 2 * V * C + L * (H * hd * C + 2 * Hkv * hd * C + C * H * hd + 3 * F * C);
  return split / tp + (2 * L + 1) * C;
}

}  // namespace fivefold::ch03
