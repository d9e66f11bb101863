// SPDX-License-Identifier: MIT
// Step 1: the model cut by layers into stages; one batch through them, forward and back.
#include "chapters/04_pipeline_parallel/steps.hpp"

namespace fivefold::ch04 {

void step1_cut(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  const int p = pp_group(ctx, lab).size(), r = ctx.rank();
  const auto ranges = stage_ranges(cfg.layers, p);
  ctx.narrator.say("The " + std::to_string(cfg.layers) + " layers are cut into " + std::to_string(p) +
                   " stages of consecutive layers" +
                   (cfg.layers % p ? " (" + std::to_string(cfg.layers % p) +
                                         " extra layer(s) go to the first stages: the last one already runs the "
                                         "final norm, the head and the loss)"
                                   : std::string(" of equal size")) +
                   ". Rank s holds stage s: the embedding on stage 0, the final norm, lm_head and loss on stage " +
                   std::to_string(p - 1) + ".");
  {
    PipelineStage stage(ctx.ops, cfg, p, 1, r);
    std::string holds = "layers [" + std::to_string(ranges[r].first) + ", " + std::to_string(ranges[r].second) + ")";
    if (stage.chunk(0).has_embedding()) holds = "embedding + " + holds;
    if (stage.chunk(0).has_head()) holds += " + final norm, lm_head, loss";
    ctx.say_ranks(holds + ": " + std::to_string(stage.params().numel()) + " parameters (" +
                  human_bytes(4.0 * static_cast<double>(stage.params().numel())) + ")");
  }
  const std::string act = "[" + std::to_string(cfg.batch) + ", " + std::to_string(cfg.seq) + ", " +
                          std::to_string(cfg.dim) + "]";
  ctx.narrator.say("Forward: stage s computes its layers on what stage s-1 sent and sends its output " + act +
                   " to stage s+1; the last stage computes the loss. Backward: the last stage sends d loss / d its "
                   "input " + act + " back to stage s-1, and so on down to stage 0. Only these boundary tensors "
                   "travel: 2 (p-1) x B T C x 4 bytes per step over all links, whatever the model's size.");
  train(ctx, lab, ScheduleKind::gpipe, 1, 1, false);
  ctx.narrator.say("Every stage's gradients and parameters equal the serial model's: a pipeline only moves where "
                   "each layer runs, not what it computes. With one batch in flight only one stage works at a time: "
                   "the next steps cut the batch into microbatches to fill the pipe.");
}

}  // namespace fivefold::ch04
