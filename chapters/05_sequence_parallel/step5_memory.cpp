// SPDX-License-Identifier: MIT
// Step 5: what each mode holds and sends: activation bytes per rank vs T, measured; the table of modes.
#include "chapters/05_sequence_parallel/steps.hpp"
#include "chapters/05_sequence_parallel/ulysses.hpp"
#include "common/check.hpp"
#include "nn/model.hpp"

#include <map>
#include <sstream>

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

/// "megatron 107820, ulysses ..." : bytes per local position (B T/sp of them) at the first T.
std::string per_position(const std::map<std::string, std::vector<std::int64_t>>& by_mode, const ModelConfig& c, int n) {
  std::string s;
  const std::int64_t local = static_cast<std::int64_t>(c.batch) * c.seq / n;
  for (const auto& [name, b] : by_mode) {
    std::ostringstream v;
    v.precision(6);
    v << static_cast<double>(b[0]) / static_cast<double>(local);
    s += (s.empty() ? "" : ", ") + name + " " + v.str();
  }
  return s;
}

}  // namespace

void step5_memory(Context& ctx, Lab& lab) {
  const ModelConfig& c = lab.o.cfg;
  const int n = ctx.size();
  ctx.narrator.say(
      "Activations are what a forward leaves for the backward. Split along T, each rank keeps about 1/sp of the "
      "serial model's; Ulysses adds the head-split copies of q, k, v and the output (the heads it holds for all T), "
      "Megatron-SP keeps the gathered [B, T, C] inputs of its blocks and the partial outputs. Measured: the "
      "tensor bytes one forward leaves allocated on this rank (rank 0 shown; a fresh model each time).");
  Table t{"Activation bytes per rank after one forward (rank 0), vs T",
          {"T", "serial", "serial / sp", "megatron", "ulysses", "ring", "zigzag"},
          {}};
  nlohmann::json& sec = ctx.summary.sections["sequence"]["memory"];
  std::map<std::string, std::vector<std::int64_t>> by_mode;  // bytes at T, 2T, 4T
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
      by_mode[sp_mode_name(mode)].push_back(b);
      row.push_back(std::to_string(b));
      jr[sp_mode_name(mode)] = b;
    }
    t.add(row);
    sec.push_back(jr);
  }
  ctx.show(t);
  // TUTORIAL: no mode keeps a T x T score matrix: what a forward leaves grows linearly with T.
  for (const auto& [name, b] : by_mode) {
    if (b.size() != 3) continue;  // a mode that cannot split 2T or 4T
    CheckResult lin = compare_exact(name + ": activation bytes per rank at 2T and 4T == 2x and 4x those at T",
                            static_cast<double>(b[1]), 2.0 * static_cast<double>(b[0]));
    merge(lin, compare_exact(lin.name, static_cast<double>(b[2]), 4.0 * static_cast<double>(b[0])));
    ctx.check(lin);
  }
  ctx.narrator.say("Per local position every mode keeps a fixed number of bytes (rank 0, at T = " + std::to_string(c.seq) +
                   ": " + per_position(by_mode, c, n) + "); so the activations per rank are that number x B x T/sp.");

  const std::int64_t B = c.batch, T = c.seq, C = c.dim, hd = c.head_dim();
  Table modes{"The modes at this layout (bytes per layer and rank, forward; the backward sends the same again "
              "except ring, see below)",
              {"mode", "split", "collective", "bytes per layer", "constraint"},
              {}};
  // A mode this layout cannot run shows why instead of its bytes.
  auto bytes = [&](SpMode m, std::int64_t v) {
    return check_layout(m, c, n).empty() ? std::to_string(v) : std::string("cannot run here");
  };
  modes.add({"megatron", "norms, residual, embedding output along T over tp; heads and F as TP",
             "all-gather + reduce-scatter (per block)", bytes(SpMode::megatron, 2 * (B * (T / n) * C * 4 + B * T * C * 4)),
             "TP's: H, Hkv, F, V divisible by tp"});
  modes.add({"ulysses", "T, then heads inside attention", "4 all-to-alls",
             bytes(SpMode::ulysses, UlyssesAttention::bytes_per_layer(c, n, B, T)),
             "H % sp == 0; Hkv % sp == 0 or sp % Hkv == 0"});
  modes.add({"ring", "T (contiguous)", "k/v blocks around the ring, sp - 1 hops",
             bytes(SpMode::ring, RingAttention::forward_bytes(c, n, B, T)), "T % sp == 0; overlap hides the hops"});
  modes.add({"zigzag", "T (one early, one late chunk per rank)", "as ring",
             bytes(SpMode::zigzag, RingAttention::forward_bytes(c, n, B, T)), "T % 2sp == 0"});
  ctx.show(modes);
  ctx.narrator.say("Ring's backward sends k/v again (sp - 1 hops) and dK/dV home (sp hops): 2(2sp - 1) blocks of "
                   "b (T/sp) Hkv hd x 4 bytes. Ulysses is bounded by the head count; ring by how well each hop "
                   "hides behind one block's compute (" + std::to_string(hd) + "-wide heads here).");
}

}  // namespace fivefold::ch05
