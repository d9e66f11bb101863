// SPDX-License-Identifier: MIT
// --dump for a pipelined run: each full tensor sent by the stage that holds it to rank 0.
#include "chapters/04_pipeline_parallel/dump.hpp"

#include <cstring>

namespace fivefold::ch04 {

StageDump::StageDump(Context& ctx, Lab& lab, PipelineStage& stage, bool enabled)
    : ctx_(&ctx), lab_(&lab), stage_(&stage), enabled_(enabled), out_(enabled && ctx.rank() == 0 ? ctx.options.dump : "") {
  if (!enabled_) return;
  nlohmann::json j = config_json(lab.o);
  j["backend"] = ctx.options.backend;
  j["schedule"] = schedule_name(dump_schedule(lab));
  out_.config(j);
  params("params", false);
}

void StageDump::params(const std::string& sub, bool grads) {
  Communicator& pp = pp_group(*ctx_, *lab_);
  Uncounted quiet(pp);  // a dump is not the pipeline's traffic
  const ModelConfig& cfg = lab_->o.cfg;
  const int p = pp.size(), v = stage_->num_chunks();
  for (const nn::ParamSpec& spec : nn::model_param_specs(cfg)) {
    int owner = 0;
    while (!chunk_holds(rank_chunks(cfg.layers, p, v, owner), cfg.layers, spec.name)) ++owner;
    Tensor t;
    if (pp.rank() == owner) {
      const nn::Param& prm = stage_->params().get(spec.name);
      t = grads ? prm.grad : prm.value;
      if (owner != 0) pp.send(t, 0);
    } else if (pp.rank() == 0) {
      t = Tensor::empty(spec.shape, DType::f32, ctx_->ops.device());
      pp.recv(t, owner);
    }
    if (pp.rank() == 0) out_.tensor(sub + "/" + spec.name, t.to(Device::host));
  }
}

void StageDump::step_begin(int k, const nn::Batch& batch) {
  if (enabled_) out_.batch(k, batch);
}

void StageDump::step0(const PipelineRunner& runner) {
  if (!enabled_) return;
  Communicator& pp = pp_group(*ctx_, *lab_);
  const ModelConfig& cfg = lab_->o.cfg;
  const int last = pp.size() - 1, m = runner.schedule().m;
  const std::int64_t b = cfg.batch / m, rows = b * cfg.seq * cfg.vocab;
  Tensor all = Tensor::empty({cfg.batch, cfg.seq, cfg.vocab});  // [B, T, V]: the microbatches' logits in order
  {
    Uncounted quiet(pp);
    for (int j = 0; j < m; ++j) {
      Tensor l;
      if (pp.rank() == last) {
        l = runner.logits().at(j);  // [b, T, V]
        if (last != 0) pp.send(l, 0);
      } else if (pp.rank() == 0) {
        l = Tensor::empty({b, cfg.seq, cfg.vocab}, DType::f32, ctx_->ops.device());
        pp.recv(l, last);
      }
      if (pp.rank() == 0) std::memcpy(all.data<float>() + j * rows, l.to(Device::host).data<float>(), rows * sizeof(float));
    }
  }
  if (pp.rank() == 0) out_.tensor("logits", all);
  params("grads", true);
}

void StageDump::finish(const std::vector<double>& losses) {
  if (!enabled_) return;
  out_.losses(losses);
  params("final", false);
  ctx_->narrator.say("--dump: wrote " + ctx_->options.dump + " (full tensors, sent to rank 0 by the stage holding each).");
}

}  // namespace fivefold::ch04
