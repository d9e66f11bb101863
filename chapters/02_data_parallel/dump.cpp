// SPDX-License-Identifier: MIT
// The --dump of a data-parallel run (see dump.hpp): rank 0 writes full tensors; the logits of
// the other ranks' sequences reach it by (uncounted) point-to-point messages.
#include "chapters/02_data_parallel/dump.hpp"

#include <filesystem>
#include <fstream>

#include "common/check.hpp"
#include "common/output.hpp"
#include "common/npy.hpp"
#include "nn/params.hpp"

namespace fivefold::ch02 {

DpDump::DpDump(Context& ctx, Lab& lab, Communicator& comm, const DpConfig& dc, const std::string& run)
    : ctx_(&ctx), lab_(&lab), comm_(&comm), dc_(dc), run_(run) {
  enabled_ = !ctx.options.dump.empty() && !lab.dumped;
  if (enabled_) lab.dumped = true;
  if (enabled_ && comm.rank() == 0) dir_ = ctx.options.dump;
}

void DpDump::params(const std::string& sub, const Tensor& dense) const {
  if (dir_.empty()) return;
  std::int64_t at = 0;
  for (const nn::ParamSpec& p : nn::model_param_specs(lab_->o.cfg)) {
    const std::int64_t len = shape_numel(p.shape);
    npy::save(dir_ + "/" + sub + "/" + p.name + ".npy", dense.flat(at, len).view(p.shape));
    at += len;
  }
}

void DpDump::begin() {
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  nlohmann::json j = config_json(lab_->o, comm_->size());
  j["zero"] = dc_.zero;  // the stage of the run that wrote the dump
  j["bucket_mb"] = dc_.bucket_mb;
  j["run"] = run_;
  j["backend"] = ctx_->options.backend;
  j["world_size"] = comm_->size();
  write_dump_config(dir_, j);
  // The initial parameters are the same whatever the stage: drawn from the seed.
  std::int64_t total = 0;
  for (const nn::ParamSpec& p : nn::model_param_specs(lab_->o.cfg)) total += shape_numel(p.shape);
  Tensor init = Tensor::empty({total});
  std::int64_t at = 0;
  for (const nn::ParamSpec& p : nn::model_param_specs(lab_->o.cfg)) {
    const std::int64_t len = shape_numel(p.shape);
    init.flat(at, len).copy_from(nn::param_init(lab_->o.cfg.seed, p.name, p.shape));
    at += len;
  }
  params("params", init);
}

void DpDump::batch(int k) {
  if (dir_.empty()) return;
  const nn::Batch b = global_batch(lab_->o, k);
  if (k == 0) {
    npy::save(dir_ + "/inputs.npy", b.inputs);
    npy::save(dir_ + "/targets.npy", b.targets);
  }
  if (lab_->o.data == "stream") {
    npy::save(dir_ + "/inputs_s" + std::to_string(k) + ".npy", b.inputs);
    npy::save(dir_ + "/targets_s" + std::to_string(k) + ".npy", b.targets);
  }
}

void DpDump::step0(const Tensor& local_logits, const Tensor& dense_grads) {
  if (!enabled_) return;
  const ModelConfig& cfg = lab_->o.cfg;
  const BatchSplit split{cfg.batch, comm_->size()};
  {
    Uncounted quiet(*comm_);  // bookkeeping, not training traffic
    if (comm_->rank() == 0) {
      Tensor all = ctx_->ops.empty({cfg.batch, cfg.seq, cfg.vocab});  // [B, T, V] on the device
      all.narrow(0, split.count(0)).copy_from(local_logits);
      for (int q = 1; q < comm_->size(); ++q) {
        Tensor rows = all.narrow(split.offset(q), split.count(q));  // [b_q, T, V]
        comm_->recv(rows, q);
      }
      npy::save(dir_ + "/logits.npy", all);
    } else {
      comm_->send(local_logits, 0);
    }
  }
  params("grads", dense_grads);
}

void DpDump::end(const std::vector<double>& losses, const Tensor& dense_final) {
  if (dir_.empty()) return;
  std::vector<float> l(losses.begin(), losses.end());
  npy::save(dir_ + "/loss.npy", Tensor::from_vector(l, {static_cast<std::int64_t>(l.size())}));
  params("final", dense_final);
  ctx_->narrator.say("Wrote the dump (docs/reference.md, 'The dump'; full tensors gathered from the " + run_ +
                     " run) to " + dir_);
}

}  // namespace fivefold::ch02
