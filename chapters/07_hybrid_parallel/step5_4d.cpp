// SPDX-License-Identifier: MIT
// Step 5: + SP (4D). The sequence split too: ring or zigzag attention on the sp axis (chapter 05;
// inside TP's f and g when tp > 1, each rank's ring carrying its own Hkv/tp kv heads), or
// Megatron-SP inside the tp group (--sp-mode megatron), together with pp and dp. Checked against
// the serial model; the ring's and the gradient sums' traffic against their formulas.
// Run: mpirun -np 8 build/cpu/bin/ch07_hybrid_parallel --step 5                 (sp 2 x tp 2 x pp 2)
//      mpirun -np 8 build/cpu/bin/ch07_hybrid_parallel --step 5 --tp 2 --pp 2 --dp 2 --sp-mode megatron
#include "chapters/04_pipeline_parallel/pp_schedule.hpp"
#include "chapters/05_sequence_parallel/ring_attention.hpp"
#include "chapters/07_hybrid_parallel/hybrid_run.hpp"
#include "chapters/07_hybrid_parallel/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch07 {

namespace {

/// Parameter bytes of this rank whose gradient is summed over @p bit (Param::sum_axes).
std::int64_t summed_param_bytes(const ModelConfig& c, const ProcessGrid& g, int rank, unsigned bit, bool megatron) {
  std::int64_t n = 0;
  const auto k = g.coords(rank);
  const auto chunks = ch04::rank_chunks(c.layers, g.size(Axis::pp), 1, k[static_cast<int>(Axis::pp)]);
  const int tp = g.size(Axis::tp);
  for (const nn::ParamSpec& p : nn::model_param_specs(c)) {
    if (!ch04::chunk_holds(chunks, c.layers, p.name)) continue;
    const bool expert = p.name.find(".moe.experts.") != std::string::npos;
    const bool router = p.name.find(".moe.router") != std::string::npos;
    const bool norm = p.name.size() >= 11 && p.name.compare(p.name.size() - 11, 11, "norm.weight") == 0;
    std::int64_t numel = shape_numel(p.shape);
    if (expert) {  // E/ep whole experts per rank
      const int e = std::stoi(p.name.substr(p.name.find(".moe.experts.") + 13));
      if (e / (c.experts / g.size(Axis::ep)) != k[static_cast<int>(Axis::ep)]) continue;
    } else if (!router && !norm) {
      numel /= tp;  // a tp shard
    }
    // TUTORIAL: who saw other data: sp and dp always; ep for dense weights only; tp (Megatron-SP)
    // for the weights that are whole on every tp rank but saw only its positions.
    const bool sums = bit == nn::kSumSp || bit == nn::kSumDp || (bit == nn::kSumEp && !expert) ||
                      (bit == nn::kSumTp && megatron && (norm || expert || router));
    if (sums) n += numel * 4;
  }
  return n;
}

}  // namespace

void check_gradient_sums(Context& ctx, const HybridRun& run, const ProcessGrid& grid, const HybridConfig& hc) {
  const bool megatron = hc.megatron_sp && grid.size(Axis::tp) > 1;
  const std::pair<const char*, unsigned> axes[] = {{"sp", nn::kSumSp}, {"ep", nn::kSumEp}, {"dp", nn::kSumDp}, {"tp", nn::kSumTp}};
  for (const auto& [name, bit] : axes) {
    if (grid.size(AxisSet::parse(name)) == 1) continue;
    const std::int64_t bytes = summed_param_bytes(hc.model, grid, ctx.rank(), bit, megatron);
    // TUTORIAL: one packed all-reduce per group and step (tp: also the loss's and, without
    // Megatron-SP, none of the gradients; those all-reduces are counted with the rest of tp's).
    if (std::string(name) == "tp") continue;
    ctx.comm(Context::entry(name, "all_reduce", run.groups.at(name), bytes ? run.steps : 0, run.steps * bytes));
  }
}

void step5_4d(Context& ctx, const Options& o) {
  const std::string why = step_blocker(o, 5, ctx.size());
  if (!why.empty()) {
    ctx.narrator.say("Step 5 trains a layout with the sequence split, and this run's cannot: " + why +
                     ".\nSkipped (e.g. mpirun -np 8 ch07_hybrid_parallel --step 5).");
    return;
  }
  const ProcessGrid grid = step_grid(o, 5, ctx.size());
  const HybridConfig hc = step_config(o, 5, ctx.size());
  const ModelConfig& c = hc.model;
  const int tp = grid.size(Axis::tp), sp = grid.size(Axis::sp), pp = grid.size(Axis::pp), m = hc.microbatches;
  const bool megatron = hc.megatron_sp && tp > 1;
  ctx.narrator.say("5a. " + grid.describe() + (megatron ? ", Megatron-SP inside tp" : ", " + ch05::sp_mode_name(hc.sp_mode) + " attention on sp") +
                   ".\n    " + (megatron ? "The norms and residuals hold T/tp positions; each TP region all-gathers along T and reduce-scatters\n"
                                           "    its output (chapter 05, step 1); the norm gains are summed over tp."
                                         : "Each rank keeps its positions' queries; k/v blocks of its Hkv/tp kv heads go around its sp group;\n"
                                           "    TP's f and g wrap the ring. Every gradient is summed over sp (each rank saw other positions).") +
                   "\n    sp groups " + show_groups(grid.groups(AxisSet{Axis::sp})) + ", tp groups " +
                   show_groups(grid.groups(AxisSet{Axis::tp})) + ", pp groups " + show_groups(grid.groups(AxisSet{Axis::pp})));
  const HybridRun run = train_hybrid(ctx, "4d", grid, hc);
  check_gradient_sums(ctx, run, grid, hc);
  if (!megatron) {  // TUTORIAL: TP's all-reduces as in step 4, on this rank's T/sp positions
    const OpCount f = tp_all_reduce_formula(c, grid, ctx.rank(), m, c.seq / sp);
    ctx.comm(Context::entry("tp", "all_reduce", run.groups.at("tp"), run.steps * f.calls, run.steps * f.payload_bytes));
  }
  if (sp > 1) {  // TUTORIAL: chapter 05's ring bytes, per layer and microbatch, with Hkv/tp kv heads
    const auto chunk = ch04::rank_chunks(c.layers, pp, 1, grid.coord(ctx.rank(), Axis::pp))[0];
    const std::int64_t Ls = chunk.second - chunk.first, bm = c.batch / grid.size(AxisSet{Axis::ep, Axis::dp}) / m;
    const std::int64_t per = ch05::RingAttention::forward_bytes(c, sp, bm, c.seq, tp) +
                             ch05::RingAttention::backward_bytes(c, sp, bm, c.seq, tp);
    const std::int64_t calls = Ls * m * (2 * (sp - 1) + 4 * sp - 2);
    ctx.comm(Context::entry("sp", "isend", run.groups.at("sp"), run.steps * calls, run.steps * Ls * m * per));
  }
}

}  // namespace fivefold::ch07
