// SPDX-License-Identifier: MIT
// Exercise 1's run for real: a schedule trained on a tiny model by the chapter's stage, link and
// runner over the whole world, and the same steps on the serial model (every rank runs it).
#include "chapters/04_pipeline_parallel/exercises/check.hpp"

#include <algorithm>

#include "chapters/04_pipeline_parallel/pp_runner.hpp"
#include "nn/model.hpp"

namespace fivefold::ch04 {

RunLosses train_tiny(Communicator& world, Ops& ops, const Schedule& s, int steps) {
  ModelConfig cfg;
  cfg.layers = std::max(4, s.p);
  cfg.dim = 32;
  cfg.heads = 4;
  cfg.kv_heads = 2;
  cfg.ffn = 64;
  cfg.seq = 8;
  cfg.vocab = 32;
  cfg.batch = 2 * s.m;
  cfg.steps = steps;
  auto batch_of = [&](int k) {
    return nn::stream_batch(cfg, k);
  };
  RunLosses out;
  PipelineStage stage(ops, cfg, s.p, 1, world.rank());  // this rank's layers, drawn as the serial model draws them
  StageLink link(world, ops);
  PipelineRunner runner(stage, link, s);
  nn::LocalUpdate update(ops, stage.params(), nn::AdamWConfig::from(cfg));
  StepRecord rec;
  for (int k = 0; k < steps; ++k) out.pipeline.push_back(runner.step(update, split_batch(batch_of(k), s.m), &rec));
  out.peak_passes = rec.peak_passes;

  nn::Model model(ops, cfg);
  nn::LocalUpdate serial(ops, model.params(), nn::AdamWConfig::from(cfg));
  for (int k = 0; k < steps; ++k) out.serial.push_back(nn::train_step(model, serial, batch_of(k)));
  return out;
}

}  // namespace fivefold::ch04
