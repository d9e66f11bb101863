// SPDX-License-Identifier: MIT
// Step 5: what each mode holds and sends: activation bytes per rank vs T, measured; the table of modes.
#include "chapters/05_sequence_parallel/steps.hpp"
#include "chapters/05_sequence_parallel/ulysses.hpp"
#include "nn/model.hpp"

namespace fivefold::ch05 {

namespace {

/// Tensor bytes one forward of @p mode on sequences of @p T leaves allocated on this rank (its
/// activations, kept for the backward), with a fresh model; the serial model's when @p serial.
std::int64_t forward_bytes(Context& ctx, Lab& lab, SpMode mode, int T, bool serial) {
  ModelConfig cfg = lab.o.cfg;
  cfg.seq = T;
  const nn::Batch batch = nn::synthetic_batch(cfg.seed, cfg.vocab, cfg.batch, T, 0);
  if (serial) {
    nn::Model model(ctx.ops, cfg);
    const std::int64_t before = memory_stats(ctx.ops.device()).live_bytes;
    model.forward(batch.inputs, batch.targets);
    return memory_stats(ctx.ops.device()).live_bytes - before;
  }
  Communicator& g = group(ctx, lab, mode);
  SpModel model(ctx.ops, g, cfg, mode);
  Uncounted quiet(g);
  const std::int64_t before = memory_stats(ctx.ops.device()).live_bytes;
  model.forward_only(batch);
  return memory_stats(ctx.ops.device()).live_bytes - before;
}

}  // namespace

void step5_memory(Context& ctx, Lab& lab) {
  const ModelConfig& c = lab.o.cfg;
  const int n = ctx.size();
  ctx.narrator.say(
      "Activations are what a forward leaves for the backward. Split along T, each rank keeps about 1/sp of the "
      "serial model's; Ulysses adds the head-split copies of q, k, v and the output (the same size again), "
      "Megatron-SP keeps the gathered [B, T, C] inputs of its blocks and the partial outputs. Measured: the "
      "tensor bytes one forward leaves allocated on this rank (rank 0 shown; a fresh model each time).");
  Table t{"Activation bytes per rank after one forward (rank 0), vs T",
          {"T", "serial", "serial / sp", "megatron", "ulysses", "ring", "zigzag"},
          {}};
  nlohmann::json& sec = ctx.summary.sections["sequence"]["memory"];
  for (int T : {c.seq, 2 * c.seq, 4 * c.seq}) {
    const std::int64_t ser = forward_bytes(ctx, lab, SpMode::ring, T, true);
    std::vector<std::string> row{std::to_string(T), std::to_string(ser), std::to_string(ser / n)};
    nlohmann::json jr = {{"T", T}, {"serial", ser}};
    for (SpMode mode : all_sp_modes()) {
      ModelConfig cfg = c;
      cfg.seq = T;
      if (!check_layout(mode, cfg, n).empty()) {
        row.push_back("-");
        continue;
      }
      const std::int64_t b = forward_bytes(ctx, lab, mode, T, false);
      row.push_back(std::to_string(b));
      jr[sp_mode_name(mode)] = b;
    }
    t.add(row);
    sec.push_back(jr);
  }
  ctx.show(t);

  const std::int64_t B = c.batch, T = c.seq, C = c.dim, hd = c.head_dim();
  Table modes{"The modes at this layout (bytes per layer and rank, forward; the backward sends the same again "
              "except ring, see below)",
              {"mode", "split", "collective", "bytes per layer", "constraint"},
              {}};
  modes.add({"megatron", "norms, residual, embedding output along T over tp; heads and F as TP",
             "all-gather + reduce-scatter (per block)",
             std::to_string(2 * (B * (T / n) * C * 4 + B * T * C * 4)), "TP's: H, Hkv, F, V divisible by tp"});
  modes.add({"ulysses", "T, then heads inside attention", "4 all-to-alls",
             std::to_string(UlyssesAttention::bytes_per_layer(c, n, B, T)),
             "H % sp == 0; Hkv % sp == 0 or sp % Hkv == 0"});
  modes.add({"ring", "T (contiguous)", "k/v blocks around the ring, sp - 1 hops",
             std::to_string(RingAttention::forward_bytes(c, n, B, T)), "T % sp == 0; overlap hides the hops"});
  modes.add({"zigzag", "T (chunks r and 2sp-1-r)", "as ring", std::to_string(RingAttention::forward_bytes(c, n, B, T)),
             "T % 2sp == 0"});
  ctx.show(modes);
  ctx.narrator.say("Ring's backward sends k/v again (sp - 1 hops) and dK/dV home (sp hops): 2(2sp - 1) blocks of "
                   "b (T/sp) Hkv hd x 4 bytes. Ulysses is bounded by the head count; ring by how well each hop "
                   "hides behind one block's compute (" + std::to_string(hd) + "-wide heads here).");
}

}  // namespace fivefold::ch05
