// SPDX-License-Identifier: MIT
// The hybrid rank: its stage's parameters, the parts of every axis, the 1F1B step.
#include "chapters/07_hybrid_parallel/hybrid.hpp"

#include "chapters/03_tensor_parallel/tp_gather.hpp"
#include "chapters/03_tensor_parallel/tp_layout.hpp"
#include "chapters/04_pipeline_parallel/pp_schedule.hpp"
#include "chapters/05_sequence_parallel/sp_layout.hpp"
#include <algorithm>

#include "common/check.hpp"
#include "nn/attention.hpp"
#include "nn/layers.hpp"

namespace fivefold::ch07 {

namespace {

std::string layer_prefix(int l) { return "layers." + std::to_string(l) + "."; }

bool is_moe(const std::string& name) { return name.find(".moe.") != std::string::npos; }

bool contains(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace

/// The parts of every axis, chosen per block: Megatron-SP, TP, ring/zigzag (inside TP when both),
/// expert-parallel MoE (with the sequence share when the sequence is split), else serial.
class HybridParts : public nn::PartFactory {
 public:
  HybridParts(Ops& ops, const GridComms& comms, const HybridConfig& hc)
      : ops_(&ops), hc_(hc), cfg_(hc.model), serial_(ops, hc.model),
        tp_(&comms.get(AxisSet{Axis::tp})), sp_(&comms.get(AxisSet{Axis::sp})), ep_(&comms.get(AxisSet{Axis::ep})) {
    if (tp_->size() > 1) tpp_ = std::make_unique<ch03::TpParts>(ops, *tp_, cfg_);
    if (megatron()) mega_ = std::make_unique<ch05::MegatronSpParts>(ops, *tp_, cfg_);
  }
  bool megatron() const { return hc_.megatron_sp && tp_->size() > 1; }
  /// The group a sequence is split over (nullptr: every rank holds whole sequences).
  Communicator* seq_group() const { return megatron() ? tp_ : sp_->size() > 1 ? sp_ : nullptr; }

  std::unique_ptr<nn::EmbeddingPart> embedding(nn::ParamRegistry& params) override {
    if (mega_) return mega_->embedding(params);
    return tpp_ ? tpp_->embedding(params) : serial_.embedding(params);
  }
  std::unique_ptr<nn::HeadPart> head(nn::ParamRegistry& params) override {
    if (mega_) return mega_->head(params);
    return tpp_ ? tpp_->head(params) : serial_.head(params);
  }
  std::unique_ptr<nn::Block> attention(nn::ParamRegistry& params, int l) override {
    if (mega_) return mega_->attention(params, l);
    if (sp_->size() > 1) {  // TUTORIAL: ring attention on this rank's heads, inside TP's f and g
      auto ring = std::make_unique<ch05::RingAttention>(*ops_, *sp_, cfg_, nn::attention_weights(params, layer_prefix(l) + "self_attn"),
                                                        hc_.sp_mode, cfg_.seq, tp_->size());
      if (tp_->size() == 1) return ring;
      return std::make_unique<ch03::TpAttention>(*ops_, *tp_, std::move(ring));
    }
    return tpp_ ? tpp_->attention(params, l) : serial_.attention(params, l);
  }
  std::unique_ptr<nn::Block> mlp(nn::ParamRegistry& params, int l) override {
    if (cfg_.is_moe_layer(l)) {  // experts over ep, whole on every tp rank
      auto m = std::make_unique<ch06::EpMoeLayer>(*ops_, *ep_, params, layer_prefix(l) + "moe", cfg_);
      if (seq_group()) m->set_sequence_share([this](const nn::Routing& r) { return share(r); });
      moe_.push_back(m.get());
      return m;
    }
    if (mega_) return mega_->mlp(params, l);
    return tpp_ ? tpp_->mlp(params, l) : serial_.mlp(params, l);
  }
  const std::vector<ch06::EpMoeLayer*>& moe() const { return moe_; }

 private:
  /// The counts of the rest of each sequence: one all-gather of every rank's per-segment counts
  /// over the sequence group, then the prefix in global position order.
  nn::SequenceShare share(const nn::Routing& r) const {
    Communicator& g = *seq_group();
    const ch05::SpMode mode = megatron() ? ch05::SpMode::megatron : hc_.sp_mode;
    const int n = g.size(), me = g.rank();
    std::vector<std::vector<ch05::Segment>> segs;
    for (int q = 0; q < n; ++q) segs.push_back(ch05::local_segments(mode, cfg_.seq, n, q));
    std::vector<std::int64_t> lens;
    for (const ch05::Segment& s : segs[me]) lens.push_back(s.len);
    const nn::SegmentCounts mine = nn::segment_counts(r, lens);
    const std::int64_t E = cfg_.experts, G = static_cast<std::int64_t>(lens.size());
    const std::int64_t cells = static_cast<std::int64_t>(mine.chosen.size()), b = cells / (G * E);
    std::vector<float> pack(2 * cells);
    for (std::int64_t i = 0; i < cells; ++i) pack[i] = static_cast<float>(mine.chosen[i]), pack[cells + i] = static_cast<float>(mine.prob_sum[i]);
    Tensor all = ops_->empty({n * 2 * cells});
    g.all_gather(ops_->upload(Tensor::from_vector(pack, {2 * cells})), all);  // TUTORIAL: E counts per segment
    const std::vector<float> h = all.to_vector();
    nn::SequenceShare sh;
    sh.seq_len = cfg_.seq;
    sh.segments = lens;
    sh.before.assign(cells, 0);
    sh.chosen.assign(b * E, 0);
    sh.prob_sum.assign(b * E, 0.0);
    sh.aux_share = 1.0 / n;  // every rank of the group computes the sequence's aux loss
    for (int q = 0; q < n; ++q)
      for (std::int64_t s = 0; s < b; ++s)
        for (std::int64_t hs = 0; hs < G; ++hs)
          for (std::int64_t e = 0; e < E; ++e) {
            const float c = h[q * 2 * cells + (s * G + hs) * E + e];
            sh.chosen[s * E + e] += static_cast<std::int64_t>(c);
            sh.prob_sum[s * E + e] += h[q * 2 * cells + cells + (s * G + hs) * E + e];
            for (std::int64_t gs = 0; gs < G; ++gs)  // TUTORIAL: prefix in global position order
              if (segs[q][hs].start < segs[me][gs].start) sh.before[(s * G + gs) * E + e] += static_cast<std::int64_t>(c);
          }
    return sh;
  }

  Ops* ops_;
  HybridConfig hc_;
  ModelConfig cfg_;
  nn::SerialParts serial_;
  Communicator *tp_, *sp_, *ep_;
  std::unique_ptr<ch03::TpParts> tpp_;
  std::unique_ptr<ch05::MegatronSpParts> mega_;
  std::vector<ch06::EpMoeLayer*> moe_;
};

std::vector<AxisSet> hybrid_sets() {
  return {AxisSet{Axis::tp}, AxisSet{Axis::sp}, AxisSet{Axis::ep},
          AxisSet{Axis::dp}, AxisSet{Axis::pp}, AxisSet{Axis::ep, Axis::dp}};
}

std::string hybrid_blocker(const ProcessGrid& grid, const HybridConfig& hc) {
  const ModelConfig& c = hc.model;
  const int tp = grid.size(Axis::tp), sp = grid.size(Axis::sp), ep = grid.size(Axis::ep);
  const int dp = grid.size(Axis::dp), pp = grid.size(Axis::pp), m = hc.microbatches;
  auto s = [](auto v) { return std::to_string(v); };
  if (tp > 1 && !contains(ch03::valid_tp_degrees(c), tp))
    return "--tp " + s(tp) + " must divide --heads " + s(c.heads) + ", --kv-heads " + s(c.kv_heads) + ", --ffn " +
           s(c.ffn) + " and --vocab " + s(c.vocab) + " (valid: " + ch03::join_ints(ch03::valid_tp_degrees(c)) + ")";
  if (hc.megatron_sp && sp > 1)
    return "--sp-mode megatron splits the sequence inside the tp group: use --sp 1 (or --sp-mode ring/zigzag for --sp " +
           s(sp) + ")";
  if (hc.megatron_sp && c.seq % tp != 0)
    return "Megatron-SP needs --seq " + s(c.seq) + " divisible by --tp " + s(tp);
  if (sp > 1 && hc.sp_mode != ch05::SpMode::ring && hc.sp_mode != ch05::SpMode::zigzag)
    return "--sp-mode " + ch05::sp_mode_name(hc.sp_mode) + " is not composed here: use ring or zigzag on the sp axis, "
           "or megatron inside tp";
  const int parts = hc.sp_mode == ch05::SpMode::zigzag ? 2 * sp : sp;
  if (sp > 1 && c.seq % parts != 0)
    return "--seq " + s(c.seq) + " must divide into " + s(parts) + " " + (hc.sp_mode == ch05::SpMode::zigzag ? "zigzag chunks (2 sp)" : "ring segments") + ": pick a multiple";
  if (ep > 1 && c.experts == 0) return "--ep " + s(ep) + " splits experts: give a MoE model (--experts E), or --ep 1";
  if (c.experts > 0 && c.experts % ep != 0)
    return "--experts " + s(c.experts) + " must be divisible by --ep " + s(ep);
  if (c.experts > 0 && tp > 1 && !hc.megatron_sp)
    return "MoE with --tp " + s(tp) + " needs sequence parallelism inside tp (as Megatron-LM requires): add --sp-mode megatron";
  if (c.batch % (dp * ep) != 0)
    return "--batch " + s(c.batch) + " must split into whole sequences over dp*ep = " + s(dp * ep) + " data ranks";
  const int rows = c.batch / (dp * ep);
  if (m < 1 || rows % m != 0)
    return "--microbatches " + s(m) + " must divide the " + s(rows) + " sequence(s) of each data rank (--batch " +
           s(c.batch) + " / (dp*ep = " + s(dp * ep) + "))";
  const std::string pipe = ch04::check_layout(ch04::ScheduleKind::one_f_one_b, c.layers, pp, m, 1, c.batch / (dp * ep));
  if (!pipe.empty()) return pipe;
  if (hc.dp.zero1 && (sp > 1 || ep > 1 || hc.megatron_sp))
    return "--zero 1 shards the optimizer over dp in the 3D layout (dp x tp x pp); with sp, ep or Megatron-SP the "
           "gradients are summed per axis instead: drop --zero";
  if (c.steps < 1) return "--steps must be >= 1";
  return "";
}

HybridStorage::HybridStorage(Ops& ops, const GridComms& comms, int rank, const HybridConfig& hc)
    : params_(ops, hc.model.seed) {
  const ProcessGrid& grid = comms.grid();
  const std::string bad = hybrid_blocker(grid, hc);  // before anything is built on a bad layout
  FIVEFOLD_CHECK(bad.empty(), bad);
  const ModelConfig& c = hc.model;
  const int tp = grid.size(Axis::tp), t = grid.coord(rank, Axis::tp);
  const bool megatron = hc.megatron_sp && tp > 1;
  stage_chunks_ = ch04::rank_chunks(c.layers, grid.size(Axis::pp), 1, grid.coord(rank, Axis::pp));
  const auto [first, count] = ch06::experts_of(std::max(c.experts, 1), grid.size(Axis::ep), grid.coord(rank, Axis::ep));
  for (const nn::ParamSpec& spec : nn::model_param_specs(c)) {
    if (!ch04::chunk_holds(stage_chunks_, c.layers, spec.name)) continue;  // TUTORIAL: pp: only my stage's layers
    const int e = nn::expert_index(spec.name);
    if (e >= 0) {
      if (e < first || e >= first + count) continue;  // TUTORIAL: ep: only my experts, whole
      nn::Param& p = params_.add(spec.name, spec.shape);
      if (megatron) p.sum_axes |= nn::kSumTp;  // they saw only my positions of the tp group
      continue;
    }
    if (tp == 1 || is_moe(spec.name)) {  // the router is replicated over tp
      nn::Param& p = params_.add(spec.name, spec.shape);
      if (megatron && is_moe(spec.name)) p.sum_axes |= nn::kSumTp;
      continue;
    }
    const ch03::Split split = ch03::split_of(spec.name);  // TUTORIAL: tp: my shard
    params_.add_block(spec.name, spec.shape, ch03::shard_starts(spec.shape, split, t, tp),
                      ch03::shard_shape(spec.shape, split, tp));
  }
  if (megatron) ch05::mark_norms_partial(params_);
  parts_ = std::make_unique<HybridParts>(ops, comms, hc);
}

HybridStorage::~HybridStorage() = default;

HybridModel::HybridModel(Ops& ops, Communicator& world, const GridComms& comms, const HybridConfig& hc)
    : HybridStorage(ops, comms, world.rank(), hc),
      nn::Decoder(ops, hc.model, params_, *parts_, stage_chunks_),
      world_(&world),
      comms_(&comms),
      hc_(hc),
      rank_(world.rank()) {
  const ProcessGrid& g = comms.grid();
  const ModelConfig& c = hc.model;
  const int tp = g.size(Axis::tp), sp = g.size(Axis::sp);
  data_rank_ = comms.get(AxisSet{Axis::ep, Axis::dp}).rank();
  rows_ = c.batch / (g.size(Axis::ep) * g.size(Axis::dp));
  T_ce_ = sp > 1 ? c.seq / sp : c.seq;
  act_len_ = parts_->megatron() ? c.seq / tp : T_ce_;
  ch04::PassSetup setup;
  setup.loss_scale = 1.0 / static_cast<double>(c.batch * c.seq);  // TUTORIAL: the global mean, wherever the token is
  setup.aux_scale = static_cast<double>(rows_ / hc.microbatches) / static_cast<double>(c.batch);
  setup.act_len = act_len_;
  if (sp > 1) {
    positions_ = ch05::local_positions(hc.sp_mode, c.seq, sp, g.coord(rank_, Axis::sp));
    setup.pos = ops.upload(Tensor::from_vector(positions_, {static_cast<std::int64_t>(positions_.size())}));
  }
  Communicator& pp = comms.get(AxisSet{Axis::pp});
  link_ = std::make_unique<ch04::StageLink>(pp, ops);
  runner_ = std::make_unique<ch04::PipelineRunner>(
      *this, *link_, ch04::make_schedule(ch04::ScheduleKind::one_f_one_b, pp.size(), hc.microbatches, 1));
  runner_->set_pass_setup(setup);
}

bool HybridModel::bucketed() const {
  const ProcessGrid& g = grid();
  return hc_.bucketed && g.size(Axis::dp) > 1 && g.size(Axis::sp) == 1 && g.size(Axis::ep) == 1 && !parts_->megatron();
}

std::unique_ptr<nn::Synchroniser> HybridModel::make_sync(const nn::AdamWConfig& adam) {
  const ModelConfig& c = hc_.model;
  if (bucketed()) {  // TUTORIAL: chapter 02's DDP (or ZeRO-1) over dp, on this stage's units only
    const int first = stage_chunks_.front().first, last = stage_chunks_.back().second;
    const int u0 = first == 0 ? 0 : 1 + first, u1 = last == c.layers ? c.layers + 1 : last;
    std::vector<ch02::Unit> all = shard_units(c, grid().size(Axis::tp)), mine(all.begin() + u0, all.begin() + u1 + 1);
    return std::make_unique<ShardDdp>(ops(), comms_->get(AxisSet{Axis::dp}), params_, std::move(mine), adam, hc_.dp, u0);
  }
  std::vector<std::pair<unsigned, Communicator*>> groups = {
      {nn::kSumTp, &comms_->get(AxisSet{Axis::tp})},
      {nn::kSumSp, &comms_->get(AxisSet{Axis::sp})},
      {nn::kSumEp, &comms_->get(AxisSet{Axis::ep})},
      {nn::kSumDp, &comms_->get(AxisSet{Axis::dp})}};
  return std::make_unique<nn::SummedUpdate>(ops(), params_, adam, std::move(groups));
}

double HybridModel::step(nn::Synchroniser& sync, const nn::Batch& global, ch04::StepRecord* record) {
  const ModelConfig& c = hc_.model;
  nn::Batch mine{global.inputs.narrow(data_rank_ * rows_, rows_).clone(), global.targets.narrow(data_rank_ * rows_, rows_).clone()};
  if (!positions_.empty()) mine = ch05::local_batch(mine, positions_);  // TUTORIAL: sp: my positions only
  ch04::StepRecord rec;
  runner_->step(sync, ch04::split_batch(mine, hc_.microbatches), &rec);
  // The global mean: cross-entropy once per tp group (replicated there), aux losses from every
  // rank (each holds its share). Uncounted: a report, not training.
  const bool ce_here = grid().coord(rank_, Axis::tp) == 0;
  const double part = (ce_here ? rec.ce * static_cast<double>(rows_ * T_ce_) / static_cast<double>(c.batch * c.seq) : 0.0) +
                      rec.aux * static_cast<double>(rows_) / static_cast<double>(c.batch);
  Tensor l = ops().upload(Tensor::from_vector(std::vector<float>{static_cast<float>(part)}, {1}));
  {
    Uncounted quiet(*world_);
    world_->all_reduce(l);
  }
  if (record) *record = std::move(rec);
  return l.to_vector()[0];
}

const std::vector<ch06::EpMoeLayer*>& HybridModel::moe_layers() const { return parts_->moe(); }

CheckResult compare_blocks(const std::string& name, nn::ParamRegistry& params, const std::map<std::string, Tensor>& ref,
                           bool grads, double tol) {
  CheckResult acc = compare(name, Tensor::zeros({1}), Tensor::zeros({1}), tol);
  for (nn::Param& p : params.all()) {
    const Tensor& full = ref.at(p.name);
    Tensor want;
    if (!p.sharded()) {
      want = full.to(Device::host);
    } else {
      const bool rows = p.value.dim(0) != p.full[0];
      const ch03::Split s = rows ? ch03::Split::rows : ch03::Split::cols;
      const std::int64_t n = rows ? p.full[0] / p.value.dim(0) : p.full.back() / p.value.dim(-1);
      const std::int64_t at = rows ? p.start[0] / p.value.dim(0) : p.start.back() / p.value.dim(-1);
      want = ch03::block_of(full, s, static_cast<int>(at), static_cast<int>(n));
    }
    merge(acc, compare(name, grads ? p.grad : p.value, want, tol));
  }
  return acc;
}

}  // namespace fivefold::ch07
