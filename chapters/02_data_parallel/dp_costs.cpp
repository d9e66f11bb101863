// SPDX-License-Identifier: MIT
// Data-parallel cost formulas (see dp_costs.hpp), written from the derivation in the README,
// independently of the code that allocates and communicates.
#include "chapters/02_data_parallel/dp_costs.hpp"

#include "common/check.hpp"

namespace fivefold::ch02 {

std::vector<OpPrediction> predicted_comm(const DpConfig& dc, const FlatLayout& layout, int buckets, int params,
                                         int steps) {
  const int n = layout.n();
  const std::int64_t S = steps, U = layout.num_units();
  const std::int64_t psi = 4 * layout.numel(), padded = 4 * layout.padded();  // bytes
  switch (dc.zero) {
    case 0:
      if (dc.bucket_mb <= 0) return {{"all_reduce", S * params, S * psi}};         // one per parameter
      return {{dc.overlap ? "iall_reduce" : "all_reduce", S * buckets, S * psi}};  // one per bucket
    case 1:  // one reduce-scatter of the whole padded buffer, one all-gather of the shards
      return {{"reduce_scatter", S, S * padded}, {"all_gather", S, S * padded / n}};
    case 2:  // the same bytes, one call per unit (each unit padded on its own)
      return {{dc.overlap ? "ireduce_scatter" : "reduce_scatter", S * U, S * padded},
              {"all_gather", S * U, S * padded / n}};
    case 3: {  // every unit gathered twice (forward, backward) and reduce-scattered once
      const char* rs = dc.overlap ? "ireduce_scatter" : "reduce_scatter";
      if (!dc.prefetch) return {{"all_gather", 2 * S * U, 2 * S * padded / n}, {rs, S * U, S * padded}};
      // With prefetch, only the first unit of each pass is gathered blocking (embed in the
      // forward, head in the backward); every other gather was started one unit ahead.
      const std::int64_t first = 4 * (layout.segment_of(0).padded + layout.segment_of(U - 1).padded) / n;
      return {{"all_gather", 2 * S, S * first},
              {"iall_gather", S * (2 * U - 2), S * (2 * padded / n - first)},
              {rs, S * U, S * padded}};
    }
    default:
      FIVEFOLD_CHECK(false, "predicted_comm: ZeRO stage ", dc.zero, " does not exist");
  }
  return {};
}

double ring_wire_bytes(const std::string& op, double payload, int n) {
  const double f = static_cast<double>(n - 1) / n;
  if (op == "all_reduce" || op == "iall_reduce") return 2 * f * payload;  // reduce-scatter + all-gather
  if (op == "reduce_scatter" || op == "ireduce_scatter") return f * payload;  // payload = the full buffer S
  if (op == "all_gather" || op == "iall_gather") return (n - 1) * payload;    // payload = one block S/n
  FIVEFOLD_CHECK(false, "ring_wire_bytes: unknown op ", op);
  return 0;
}

double textbook_comm_bytes(int zero, std::int64_t psi, int n) {
  return (zero == 3 ? 3.0 : 2.0) * (n - 1) / n * 4.0 * static_cast<double>(psi);
}

TextbookMemory textbook_memory(int zero, std::int64_t psi, int n, const BytesPerParam& k) {
  const double P = static_cast<double>(psi);
  TextbookMemory m;
  m.params = k.params * P / (zero >= 3 ? n : 1);
  m.grads = k.grads * P / (zero >= 2 ? n : 1);
  m.optimizer = k.optimizer * P / (zero >= 1 ? n : 1);
  return m;
}

MemoryBytes exact_memory(const DpConfig& dc, const FlatLayout& layout) {
  const std::int64_t n = layout.n(), P = 4 * layout.padded(), W = 4 * layout.max_padded();
  MemoryBytes m;
  switch (dc.zero) {
    case 0:  // layout for n = 1: no padding
      m.params = P;
      m.grads = P;
      m.optimizer = 2 * P;
      break;
    case 1:  // full gradient + the reduce-scatter output; staging copy for the all-gather
      m.params = P;
      m.grads = P + P / n;
      m.optimizer = 2 * P / n;
      m.buffers = P / n;
      break;
    case 2:  // the gradient shard; one unit's full gradient at a time; staging copy
      m.params = P;
      m.grads = P / n;
      m.optimizer = 2 * P / n;
      m.buffers = P / n + (dc.overlap ? 2 : 1) * W;
      break;
    case 3:  // shards only; one or two gather workspaces and one gradient workspace
      m.params = P / n;
      m.grads = P / n;
      m.optimizer = 2 * P / n;
      m.buffers = (dc.prefetch ? 2 : 1) * W + (dc.overlap ? 2 : 1) * W;
      break;
    default:
      FIVEFOLD_CHECK(false, "exact_memory: ZeRO stage ", dc.zero, " does not exist");
  }
  return m;
}

}  // namespace fivefold::ch02
