// SPDX-License-Identifier: MIT
// A pipeline stage's parameters and chunks, and one training step run pass by pass.
#include "chapters/04_pipeline_parallel/pp_runner.hpp"

#include <map>

#include "common/check.hpp"
#include "common/clock.hpp"
#include "common/trace.hpp"
#include "nn/attention.hpp"

namespace fivefold::ch04 {

namespace {

/// Rows [first, first+n) of a host [B, T] tensor.
Tensor rows(const Tensor& t, std::int64_t first, std::int64_t n) { return t.narrow(first, n).clone(); }

}  // namespace

bool chunk_holds(const std::vector<std::pair<int, int>>& chunks, int layers, const std::string& name) {
  for (const auto& [first, last] : chunks) {
    if (name.rfind("embed_tokens.", 0) == 0 && first == 0) return true;
    if ((name == "norm.weight" || name.rfind("lm_head.", 0) == 0) && last == layers) return true;
    if (name.rfind("layers.", 0) == 0) {
      const int l = std::stoi(name.substr(7));
      if (first <= l && l < last) return true;
    }
  }
  return false;
}

StageStorage::StageStorage(Ops& ops, const ModelConfig& cfg, const std::vector<std::pair<int, int>>& chunks)
    : params_(ops, cfg.seed), parts_(ops, cfg) {
  cfg.validate();
  for (const nn::ParamSpec& spec : nn::model_param_specs(cfg))
    if (chunk_holds(chunks, cfg.layers, spec.name)) params_.add(spec.name, spec.shape);  // TUTORIAL: only its layers
}

PipelineStage::PipelineStage(Ops& ops, const ModelConfig& cfg, int p, int v, int rank)
    : StageStorage(ops, cfg, rank_chunks(cfg.layers, p, v, rank)),
      nn::Decoder(ops, cfg, params_, parts_, rank_chunks(cfg.layers, p, v, rank)) {}

std::vector<nn::Batch> split_batch(const nn::Batch& batch, int m) {
  const std::int64_t B = batch.inputs.dim(0);
  FIVEFOLD_CHECK(m >= 1 && B % m == 0, "split_batch: ", m, " microbatches do not divide the batch of ", B);
  std::vector<nn::Batch> out;
  for (int j = 0; j < m; ++j) out.push_back({rows(batch.inputs, j * (B / m), B / m), rows(batch.targets, j * (B / m), B / m)});
  return out;
}

PipelineRunner::PipelineRunner(nn::Decoder& stage, StageLink& link, Schedule schedule)
    : stage_(&stage), link_(&link), s_(std::move(schedule)), rank_(link.group().rank()) {
  FIVEFOLD_CHECK(link.group().size() == s_.p, "PipelineRunner: a schedule of ", s_.p, " stages over a group of ",
                 link.group().size(), " ranks");
  const auto want = rank_chunks(stage.config().layers, s_.p, s_.v, rank_);
  FIVEFOLD_CHECK(stage.num_chunks() == s_.v, "PipelineRunner: rank ", rank_, " holds ", stage.num_chunks(),
                 " chunks, the schedule runs ", s_.v);
  for (int c = 0; c < s_.v; ++c)
    FIVEFOLD_CHECK(stage.chunk(c).first_layer() == want[c].first && stage.chunk(c).last_layer() == want[c].second,
                   "PipelineRunner: chunk ", c, " of rank ", rank_, " must hold layers [", want[c].first, ", ",
                   want[c].second, ")");
}

double PipelineRunner::step(nn::Synchroniser& sync, const std::vector<nn::Batch>& microbatches, StepRecord* record) {
  const int m = s_.m, V = s_.stages(), p = s_.p;
  FIVEFOLD_CHECK(static_cast<int>(microbatches.size()) == m, "PipelineRunner: the schedule runs ", m,
                 " microbatches, got ", microbatches.size());
  Ops& ops = stage_->ops();
  const std::int64_t b = microbatches[0].inputs.dim(0), T = microbatches[0].inputs.dim(1), C = stage_->config().dim;
  const std::int64_t rows_total = b * m;
  const std::int64_t Ta = setup_.act_len > 0 ? setup_.act_len : T;
  const Shape act{b, Ta, C};  // TUTORIAL: what crosses a stage boundary: [b, T, C] activations or their gradients
  const Tensor pos = setup_.pos.defined() ? setup_.pos : nn::positions(ops, 0, T);
  {
    Uncounted quiet(link_->group());
    link_->group().barrier();  // a common start, so the ranks' clocks compare
  }
  const double t0 = now_seconds();
  StepRecord rec;
  sync.zero_grad();
  const nn::UnitHooks hooks_mid = sync.hooks(false), hooks_last = sync.hooks(true);
  const std::int64_t base = memory_stats(ops.device()).live_bytes;
  std::map<std::pair<int, int>, std::unique_ptr<nn::ChunkActs>> live;  // (virtual stage, microbatch) -> activations
  if (keep_logits_) logits_.assign(m, Tensor());
  double loss = 0.0;
  for (const Action& a : s_.ranks[rank_]) {
    nn::Chunk& chunk = stage_->chunk(a.vstage / p);
    const nn::UnitHooks& hooks = a.mb == m - 1 ? hooks_last : hooks_mid;  // sync only in the last microbatch
    const double share = 1.0 / m;
    PassEvent ev{a, 0.0, 0.0};
    const std::string span_name = a.kind + std::to_string(a.mb) + (s_.v > 1 ? "/" + std::to_string(a.vstage / p) : "");
    TraceSpan span(span_name.c_str(), "pipeline");  // the pass as in the timeline (its receive included)
    if (a.kind == 'F') {
      auto acts = chunk.new_acts();
      nn::Pass& pass = acts->pass;
      pass.tokens = ops.upload(microbatches[a.mb].inputs);
      pass.targets = ops.upload(microbatches[a.mb].targets);
      pass.pos = pos;
      pass.loss_scale = m == 1 ? 0.0 : 1.0 / static_cast<double>(rows_total * T);  // a share of the step's mean
      pass.aux_scale = m == 1 ? 1.0 : share;
      if (setup_.loss_scale > 0) pass.loss_scale = setup_.loss_scale;
      if (setup_.aux_scale > 0) pass.aux_scale = setup_.aux_scale;
      Tensor x;
      if (a.vstage > 0) x = link_->recv(act, DType::f32, (a.vstage - 1) % p, {'F', a.mb, a.vstage});
      ev.start = now_seconds() - t0;
      const Tensor& out = chunk.forward(*acts, x, hooks);
      ops.synchronize();
      ev.end = now_seconds() - t0;
      loss += share * (acts->ce + acts->aux);  // the head's cross-entropy (last stage), every stage's aux losses
      rec.ce += share * acts->ce;
      rec.aux += share * acts->aux;
      if (a.vstage < V - 1) link_->send(out, (a.vstage + 1) % p, {'F', a.mb, a.vstage + 1});
      if (a.vstage == V - 1 && keep_logits_) logits_[a.mb] = out.clone();
      live[{a.vstage, a.mb}] = std::move(acts);
      if (rec.first_pass_bytes == 0) rec.first_pass_bytes = memory_stats(ops.device()).live_bytes - base;
    } else {
      const auto it = live.find({a.vstage, a.mb});
      FIVEFOLD_CHECK(it != live.end(), "PipelineRunner: rank ", rank_, " runs ", a.kind, a.mb, " of virtual stage ",
                     a.vstage, " before its forward");
      nn::ChunkActs& acts = *it->second;
      if (a.kind == 'W') {
        ev.start = now_seconds() - t0;
        chunk.backward_weight(acts, hooks);  // TUTORIAL: zero bubble: the weight gradient, later
      } else {
        Tensor dy;
        if (a.vstage < V - 1) dy = link_->recv(act, DType::f32, (a.vstage + 1) % p, {'B', a.mb, a.vstage});
        ev.start = now_seconds() - t0;
        const Tensor& dx = s_.split_backward ? chunk.backward_input(acts, dy, hooks) : chunk.backward(acts, dy, hooks);
        if (a.vstage > 0) link_->send(dx, (a.vstage - 1) % p, {'B', a.mb, a.vstage - 1});
      }
      ops.synchronize();
      ev.end = now_seconds() - t0;
      if (a.kind == 'W' || !s_.split_backward) live.erase(it);  // this pass's activations are done
    }
    link_->progress();  // keep posted sends moving while this rank only computes
    rec.peak_passes = std::max(rec.peak_passes, static_cast<int>(live.size()));
    rec.peak_bytes = std::max(rec.peak_bytes, memory_stats(ops.device()).live_bytes - base);
    rec.events.push_back(ev);
  }
  FIVEFOLD_CHECK(live.empty(), "PipelineRunner: rank ", rank_, " ended the step with ", live.size(),
                 " passes whose backward never ran; the schedule must run every pass's backward");
  link_->wait_all();
  sync.finish();
  sync.update();
  rec.seconds = now_seconds() - t0;
  // The step's loss: the last stage's cross-entropy plus every stage's aux losses (a report,
  // not the pipeline's traffic: uncounted).
  Tensor l = ops.upload(Tensor::from_vector(std::vector<float>{static_cast<float>(loss)}, {1}));
  {
    Uncounted quiet(link_->group());
    link_->group().all_reduce(l);
  }
  if (record) *record = std::move(rec);
  return l.to(Device::host).at<float>(0);
}

}  // namespace fivefold::ch04
