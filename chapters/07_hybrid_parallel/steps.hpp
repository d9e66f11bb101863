// SPDX-License-Identifier: MIT
/// @file steps.hpp
/// @brief Chapter 07's steps (each step is one short file, step<k>_*.cpp).
#pragma once

#include "chapters/07_hybrid_parallel/layout.hpp"
#include "chapters/harness.hpp"

namespace fivefold::ch07 {

/// Step 1: the grid (rank <-> coordinates, every group; the 16-GPU example of Megatron-LM),
/// then the communicators of every set of axes built by split and checked against the groups.
void step1_grid(Context& ctx, const Options& o);
/// Step 2: placement on nodes: which axes' groups stay inside a node, the bytes each axis
/// moves per training step, and two orders compared.
void step2_placement(Context& ctx, const Options& o);
/// Step 3: DP x TP training: chapter 03's TP model on the tp groups, chapter 02's bucketed
/// gradient all-reduce on the dp groups, against the serial model (skipped, with the reason,
/// for a layout it cannot train; see dp_tp_blocker()).
void step3_dp_tp(Context& ctx, const Options& o);
/// Step 4: DP x TP x PP (3D) on the hybrid model, == serial; each group's traffic vs formula.
void step4_3d(Context& ctx, const Options& o);
/// Step 5: + SP (4D): ring/zigzag on the sp axis or Megatron-SP inside tp, == serial.
void step5_4d(Context& ctx, const Options& o);
/// Step 6: + EP (5D): MoE with experts on ep, gradients over their groups, == serial.
void step6_5d(Context& ctx, const Options& o);
/// Step 7: one step of a step 4-6 layout, its counted payloads on a wire model and on nodes of
/// --gpus-per-node ranks: inside vs across, the run's order vs the reversed one.
void step7_wire(Context& ctx, const Options& o);

}  // namespace fivefold::ch07
