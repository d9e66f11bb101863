// SPDX-License-Identifier: MIT
/// @file dp_costs.hpp
/// @brief The cost formulas of data parallelism: memory per rank and communication per step,
/// both the textbook forms (ZeRO paper) and the exact ones of this code (padding included),
/// which the chapter compares with what it measured and counted.
///
/// Memory per rank, Ψ parameters, n ranks, bytes per parameter for (params, grads, optimizer):
/// | stage | textbook                    | fp32 here (4, 4, 8) | mixed precision (2, 2, 12) |
/// |-------|-----------------------------|---------------------|----------------------------|
/// | 0     | (P + G + O) Ψ               | 16 Ψ                | 16 Ψ                       |
/// | 1     | (P + G) Ψ + O Ψ/n           | 8 Ψ + 8 Ψ/n         | 4 Ψ + 12 Ψ/n               |
/// | 2     | P Ψ + (G + O) Ψ/n           | 4 Ψ + 12 Ψ/n        | 2 Ψ + 14 Ψ/n               |
/// | 3     | (P + G + O) Ψ/n             | 16 Ψ/n              | 16 Ψ/n                     |
/// Communication per rank per step with ring collectives (bytes sent, fp32 gradients):
/// stages 0-2: 2(n-1)/n · 4Ψ (all-reduce = reduce-scatter + all-gather); stage 3: 3(n-1)/n · 4Ψ
/// (an all-gather in the forward, another in the backward, one reduce-scatter).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chapters/02_data_parallel/dp_trainer.hpp"
#include "chapters/02_data_parallel/flat_layout.hpp"

namespace fivefold::ch02 {

/// Predicted calls and payload bytes of one operation (Communicator counting rules).
struct OpPrediction {
  std::string op;                  ///< "all_reduce", "iall_reduce", "reduce_scatter", "all_gather"
  std::int64_t calls = 0;          ///< calls per rank
  std::int64_t payload_bytes = 0;  ///< payload bytes per rank (the buffers handed to the calls)
};

/// What one rank's DpTrainer(@p dc) issues in @p steps steps: @p layout is the trainer's,
/// @p buckets its number of buckets, @p params the number of parameter tensors (naive DDP).
std::vector<OpPrediction> predicted_comm(const DpConfig& dc, const FlatLayout& layout, int buckets, int params,
                                         int steps);

/// Bytes one rank SENDS in a ring implementation of @p op given the counted payload @p payload
/// (all_reduce: 2(n-1)/n·S; reduce_scatter (payload S): (n-1)/n·S; all_gather (payload S/n): (n-1)·S/n).
double ring_wire_bytes(const std::string& op, double payload, int n);

/// The textbook bytes sent per rank per step: 2(n-1)/n·4Ψ for stages 0-2, 3(n-1)/n·4Ψ for stage 3.
double textbook_comm_bytes(int zero, std::int64_t psi, int n);

/// Bytes per parameter of parameters, gradients and optimizer states.
struct BytesPerParam {
  double params = 4;     ///< parameters (fp32 here; 2 in the ZeRO paper's mixed precision)
  double grads = 4;      ///< gradients (fp32 here; 2 in mixed precision)
  double optimizer = 8;  ///< AdamW m and v (fp32 here; 12 in mixed precision: + fp32 master weights)
};

/// The textbook memory per rank of @p zero for Ψ = @p psi, n = @p n (see the table above);
/// fields in bytes (no padding, no buffers).
struct TextbookMemory {
  double params = 0;     ///< parameter bytes per rank
  double grads = 0;      ///< gradient bytes per rank
  double optimizer = 0;  ///< optimizer-state bytes per rank
  /// Sum of the three.
  double total() const { return params + grads + optimizer; }
};
/// The table above as numbers.
TextbookMemory textbook_memory(int zero, std::int64_t psi, int n, const BytesPerParam& k = {});

/// The exact bytes this code holds per rank for @p dc over @p layout (padding, the reduce-scatter
/// output, the all-gather staging copy and the ZeRO-2/3 workspaces included); compared with
/// DpTrainer::memory().
MemoryBytes exact_memory(const DpConfig& dc, const FlatLayout& layout);

}  // namespace fivefold::ch02
