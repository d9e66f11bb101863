// SPDX-License-Identifier: MIT
// Training the serial and the TP model side by side (steps 6 and 7), with the checks, the
// per-block communication table and the --dump (docs/reference.md, "The dump"; full tensors, gathered).
#include <chrono>

#include "chapters/03_tensor_parallel/steps.hpp"
#include "chapters/03_tensor_parallel/tp_gather.hpp"
#include "common/check.hpp"
#include "common/npy.hpp"

namespace fivefold::ch03 {

namespace {

/// Predicted all-reduce traffic of the block @p label in the forward (or backward).
CommCost predicted_block(const ModelConfig& cfg, const std::string& label, bool backward) {
  const std::int64_t N = static_cast<std::int64_t>(cfg.batch) * cfg.seq, C = cfg.dim;
  if (label == "embedding") return backward ? CommCost{} : embedding_forward_cost(N, C);
  if (label == "lm head + loss") return loss_cost(N);
  if (label == "lm head") return head_backward_cost(N, C);
  return block_cost(N, C);  // "layer l attention" / "layer l mlp"
}

}  // namespace

void train(Context& ctx, Lab& lab, bool narrate) {
  const ModelConfig& cfg = lab.o.cfg;
  Communicator& tp = tp_group(ctx, lab);
  const int n = tp.size(), r = tp.rank();
  const std::string dir = narrate && ctx.rank() == 0 ? ctx.options.dump : "";
  const bool dumping = narrate && !ctx.options.dump.empty();  // the same on every rank (gathers are collective)
  lab.serial = std::make_unique<nn::Model>(ctx.ops, cfg);
  lab.model = std::make_unique<TpModel>(ctx.ops, tp, cfg);
  TpModel& model = *lab.model;
  nn::Model& serial = *lab.serial;
  nn::AdamW sopt(ctx.ops, nn::AdamWConfig::from(cfg), serial.params());
  nn::AdamW topt(ctx.ops, nn::AdamWConfig::from(cfg));
  for (nn::Param& p : model.params().all()) topt.add(p.value, p.grad);  // TUTORIAL: each rank updates its shards
  if (narrate)
    ctx.check(
        check_all_shards("initial shards == serial slices (exact)", model.params(), serial.params(), r, n, false, 0.0));
  if (dumping) {
    if (!dir.empty()) {
      nlohmann::json j = config_json(lab.o, ctx.size());
      j["backend"] = ctx.options.backend;
      write_config_json(dir, j);
    }
    dump_full_params(tp, ctx.ops, model.params(), dir, "params", false);
  }

  Table blocks{"Step 0, all-reduces block by block (counted on rank 0 vs formula)",
               {"pass", "block", "calls", "bytes", "predicted calls", "predicted bytes", "ring bytes/rank"},
               {}};
  bool backward = false;
  OpCount last;
  auto observe = [&](const std::string& label) {
    const auto it = tp.counts().find("all_reduce");
    const OpCount now = it == tp.counts().end() ? OpCount{} : it->second;
    const CommCost want = predicted_block(cfg, label, backward);
    const std::int64_t calls = now.calls - last.calls, bytes = now.payload_bytes - last.payload_bytes;
    blocks.add({backward ? "backward" : "forward", label, std::to_string(calls), std::to_string(bytes),
                std::to_string(want.calls), std::to_string(want.bytes),
                human_bytes(ring_wire_bytes(static_cast<double>(bytes), n))});
    last = now;
  };

  std::vector<double> losses, ref_losses;
  CommCounts fwd0, bwd0, total;
  double tp_seconds = 0, serial_seconds = 0;
  for (int k = 0; k < cfg.steps; ++k) {
    const nn::Batch batch = batch_of_step(lab.o, k);
    auto t0 = std::chrono::steady_clock::now();
    serial.zero_grad();
    ref_losses.push_back(serial.forward(batch.inputs, batch.targets));
    serial.backward();
    ctx.ops.synchronize();
    serial_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    t0 = std::chrono::steady_clock::now();
    model.zero_grad();
    tp.reset_counts();
    backward = false;
    last = OpCount{};
    if (k == 0 && narrate) model.set_observer(observe);
    losses.push_back(model.forward(batch.inputs, batch.targets));
    const CommCounts fwd = tp.counts();
    tp.reset_counts();
    backward = true;
    last = OpCount{};
    model.backward();
    model.set_observer({});
    const CommCounts bwd = tp.counts();
    ctx.ops.synchronize();
    tp_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const CommCounts* c : {&fwd, &bwd})
      for (const auto& [op, oc] : *c) total[op].calls += oc.calls, total[op].payload_bytes += oc.payload_bytes;

    if (k == 0) {
      fwd0 = fwd;
      bwd0 = bwd;
      if (narrate) {
        ctx.check(check_shard("step-0 logits shard == serial columns", model.logits(), serial.logits(), Split::cols, r,
                              n, 1e-5));
        ctx.check(
            check_all_shards("step-0 gradients == serial slices", model.params(), serial.params(), r, n, true, 1e-5));
      }
      if (dumping) {
        if (!dir.empty()) {
          npy::save(dir + "/inputs.npy", batch.inputs);
          npy::save(dir + "/targets.npy", batch.targets);
        }
        const Tensor logits = gather_full(tp, ctx.ops, model.logits(), Split::cols);
        if (!dir.empty()) npy::save(dir + "/logits.npy", logits);
        dump_full_params(tp, ctx.ops, model.params(), dir, "grads", true);
      }
    }
    if (!dir.empty() && lab.o.data == "stream") {
      npy::save(dir + "/inputs_s" + std::to_string(k) + ".npy", batch.inputs);
      npy::save(dir + "/targets_s" + std::to_string(k) + ".npy", batch.targets);
    }
    sopt.step();
    topt.step();
  }
  if (!narrate) return;

  ctx.show(blocks);
  const std::int64_t N = static_cast<std::int64_t>(cfg.batch) * cfg.seq, C = cfg.dim;
  ctx.narrator.say("Per layer and step: 2 all-reduces of [N, C] forward + 2 backward = 4 x " +
                   human_bytes(4.0 * N * C) +
                   " handed to all-reduce. Model per step: forward 2L+4 = " + std::to_string(2 * cfg.layers + 4) +
                   " calls, backward 2L+1 = " + std::to_string(2 * cfg.layers + 1) + ".");
  const CommCost f = model_forward_cost(cfg), b = model_backward_cost(cfg);
  record(ctx, fwd0, n, "model forward (per step)", "all_reduce", f);
  record(ctx, bwd0, n, "model backward (per step)", "all_reduce", b);
  CommCost run{cfg.steps * (f.calls + b.calls), cfg.steps * (f.bytes + b.bytes)};
  record(ctx, total, n, "training (" + std::to_string(cfg.steps) + " steps)", "all_reduce", run);
  record(ctx, total, n, "training (" + std::to_string(cfg.steps) + " steps)", "all_gather", {});

  ctx.check_losses("Loss per step: TP vs serial", "tp", losses, ref_losses, 1e-5);
  ctx.check(check_all_shards("parameters after " + std::to_string(cfg.steps) + " AdamW steps == serial slices",
                             model.params(), serial.params(), r, n, false, 1e-4));
  ctx.check(identical_across(tp, ctx.ops, model.params(),
                             "replicated norm weights identical on every TP rank (bitwise)",
                             [](const std::string& name) { return split_of(name) == Split::replicated; }));
  ctx.narrator.say("Time per training step (forward + backward, this rank): TP " +
                   fmt("%.2f", 1e3 * tp_seconds / std::max(cfg.steps, 1)) + " ms, serial " +
                   fmt("%.2f", 1e3 * serial_seconds / std::max(cfg.steps, 1)) +
                   " ms (ranks share the cores here; see bench_tp for timings).");
  if (dumping) {
    if (!dir.empty()) {
      npy::save(dir + "/loss.npy", Tensor::from_vector(std::vector<float>(losses.begin(), losses.end()), {cfg.steps}));
      ctx.narrator.say("--dump: wrote " + dir + " (full tensors, gathered from the shards).");
    }
    dump_full_params(tp, ctx.ops, model.params(), dir, "final", false);
  }
}

}  // namespace fivefold::ch03
