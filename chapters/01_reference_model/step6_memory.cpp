// SPDX-License-Identifier: MIT
// Step 6: memory. The tensor allocator counts live bytes per device (memory_stats), so every
// part of a training step can be measured as the growth of live bytes across the code that
// allocates it: the model (parameters + gradients), the optimizer (AdamW's m and v), the first
// forward (activations kept for the backward, plus this implementation's extras), the first
// backward (its gradient buffers). Each is compared with the formula of costs.cpp.
// Run: build/cpu/bin/ch01_reference_model --step 6   (try --batch 16, --seq 64, --experts 4)
#include <cmath>

#include "chapters/01_reference_model/costs.hpp"
#include "chapters/01_reference_model/steps.hpp"
#include "chapters/01_reference_model/traced_model.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch01 {

namespace {

std::int64_t live(Device d) { return memory_stats(d).live_bytes; }

std::string bytes_cell(double b) { return std::to_string(static_cast<std::int64_t>(b)) + " (" + human_bytes(b) + ")"; }

/// Every rank's @p v, gathered to every rank (uncounted bookkeeping).
std::vector<std::int64_t> per_rank(Context& ctx, std::int64_t v) {
  std::vector<std::int64_t> out;
  for (const std::string& s : ctx.gather(std::to_string(v))) out.push_back(std::stoll(s));
  return out;
}

void formula_at_124m(Context& ctx) {
  const ModelConfig big = config_124m();
  const StateBytes s = state_bytes(big);
  const ActivationBytes a = activation_bytes(big);
  Table t{"The same formulas at the '124M' size (V 32000, C 768, F 2048, L 12, H 12, Hkv 4, B 8, T 1024)",
          {"what", "bytes"}, {}};
  t.add({"parameters (4N)", human_bytes(static_cast<double>(s.params))});
  t.add({"gradients (4N)", human_bytes(static_cast<double>(s.grads))});
  t.add({"AdamW m, v (8N)", human_bytes(static_cast<double>(s.adam))});
  t.add({"activations kept for the backward (minimum)", human_bytes(static_cast<double>(a.saved))});
  t.add({"activations this implementation keeps", human_bytes(static_cast<double>(a.forward))});
  t.add({"backward buffers", human_bytes(static_cast<double>(a.backward))});
  ctx.show(t);
  ctx.narrator.say("At this size activations outweigh the 16N bytes of model state, and the logits alone (B T V "
                   "floats, twice with dlogits) are " + human_bytes(2.0 * 4 * big.batch * big.seq * big.vocab) +
                   ": why chapters 02-07 shard activations as well as weights.");
}

}  // namespace

void step6_memory(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  Ops& ops = ctx.ops;
  const Device dev = ops.device();
  const nn::Batch batch = batch_of_step(lab.o, 0);  // before measuring: on the CPU the host is the device

  const std::int64_t base = live(dev);
  auto model = std::make_unique<nn::Model>(ops, cfg);
  const std::int64_t model_bytes = live(dev) - base;
  nn::AdamW adamw(ops, nn::AdamWConfig::from(cfg), model->params());
  const std::int64_t adam_bytes = live(dev) - base - model_bytes;
  TracedModel traced(ops, model->params(), cfg);
  const std::int64_t before = live(dev);
  reset_peak(dev);
  traced.forward(batch.inputs, batch.targets);
  const std::int64_t fwd_bytes = live(dev) - before;
  traced.backward();
  const std::int64_t bwd_bytes = live(dev) - before - fwd_bytes;
  adamw.step();
  const std::int64_t step_bytes = live(dev) - before - fwd_bytes - bwd_bytes;
  const std::int64_t peak = memory_stats(dev).peak_bytes - base;

  std::vector<std::int64_t> assignments;  // per MoE layer: the (token, expert) pairs computed
  for (nn::DecoderLayer& layer : traced.layers())
    if (layer.moe()) {
      std::int64_t a = 0;
      for (const auto& e : layer.moe()->routing().expert_tokens) a += static_cast<std::int64_t>(e.size());
      assignments.push_back(a);
    }
  const StateBytes s = state_bytes(cfg);
  const ActivationBytes a = activation_bytes(cfg, assignments);
  const double N = static_cast<double>(param_count(cfg));

  Table t{"Memory of one training step (" + std::string(device_name(dev)) + ", bytes counted by the tensor allocator)",
          {"what", "formula", "formula bytes", "measured (growth of live bytes)"}, {}};
  t.add({"parameters + gradients (nn::Model)", "4N + 4N", bytes_cell(8 * N), bytes_cell(model_bytes)});
  t.add({"AdamW m, v", "4N + 4N", bytes_cell(static_cast<double>(s.adam)), bytes_cell(adam_bytes)});
  t.add({"forward + loss: activations", "README, Memory", bytes_cell(static_cast<double>(a.forward)),
         bytes_cell(fwd_bytes)});
  t.add({"  of which the backward needs", "minimum", bytes_cell(static_cast<double>(a.saved)), "-"});
  t.add({"backward: gradient buffers", "README, Memory", bytes_cell(static_cast<double>(a.backward)),
         bytes_cell(bwd_bytes)});
  t.add({"AdamW step", "0 (in place)", "0", bytes_cell(step_bytes)});
  t.add({"peak over the step (incl. temporaries)", "", "", bytes_cell(static_cast<double>(peak))});
  ctx.show(t);
  ctx.narrator.say(
      "The forward keeps " + human_bytes(static_cast<double>(a.forward - a.saved)) + " more than the backward "
      "strictly needs: each block's output buffer before the residual add (attention's o_proj output and the "
      "MLP's output, 2 B T C per layer), a separate dlogits [B, T, V] (Ops::cross_entropy could write it over the "
      "logits), per-token losses, tokens, targets and positions" +
      (cfg.experts > 0 ? ", and in MoE layers the router logits, the gathered expert inputs and a copy of each "
                         "expert's output"
                       : std::string()) +
      ".\nThe backward's buffers are allocated once and reused every step; a tighter implementation frees each "
      "activation as soon as its block's backward has used it.");

  check_number(ctx, "parameter + gradient bytes == 8N (allocator)", static_cast<double>(model_bytes), 8 * N, 0.0);
  check_number(ctx, "AdamW state bytes == 8N (allocator)", static_cast<double>(adam_bytes),
               static_cast<double>(s.adam), 0.0);
  check_number(ctx, "forward activation bytes == formula (allocator)", static_cast<double>(fwd_bytes),
               static_cast<double>(a.forward), 0.0);
  check_number(ctx, "backward buffer bytes == formula (allocator)", static_cast<double>(bwd_bytes),
               static_cast<double>(a.backward), 0.0);
  check_number(ctx, "AdamW step allocates nothing", static_cast<double>(step_bytes), 0.0, 0.0);
  ctx.summary.param_bytes_per_rank = per_rank(ctx, s.params);
  ctx.summary.peak_bytes_per_rank = per_rank(ctx, peak);
  formula_at_124m(ctx);
}

}  // namespace fivefold::ch01
