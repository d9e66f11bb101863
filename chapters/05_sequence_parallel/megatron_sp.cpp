// SPDX-License-Identifier: MIT
// Megatron-SP: chapter 03's blocks and vocab-parallel parts, f and g turned into an all-gather
// and a reduce-scatter along T.
#include "chapters/05_sequence_parallel/megatron_sp.hpp"

#include "chapters/03_tensor_parallel/tp_vocab.hpp"
#include "nn/attention.hpp"
#include "nn/layers.hpp"
#include "nn/params.hpp"

namespace fivefold::ch05 {

namespace {

std::string layer_prefix(int l) { return "layers." + std::to_string(l) + "."; }

/// Vocab-parallel lookup of all T tokens, then a reduce-scatter along T (instead of TP's
/// all-reduce): each rank ends with the embeddings of its own positions. Backward: the
/// gradient of this rank's positions is gathered along T, then scattered into its vocab rows.
class SpEmbedding : public nn::EmbeddingPart {
 public:
  struct Saved : nn::Acts {
    std::unique_ptr<nn::Acts> inner;
    Tensor y, full_dx;
  };
  SpEmbedding(Ops& ops, Communicator& tp, RowMaps& maps, SeqBuffers& buf, nn::Param& w)
      : ops_(&ops), tp_(&tp), maps_(&maps), buf_(&buf), inner_(ops, tp, w, /*reduce=*/false) {}
  std::unique_ptr<nn::Acts> new_acts() const override {
    auto s = std::make_unique<Saved>();
    s->inner = inner_.new_acts();
    return s;
  }
  const Tensor& forward(nn::Acts& a, const nn::Pass& pass) override {
    Saved& s = static_cast<Saved&>(a);
    const Tensor& partial = inner_.forward(*s.inner, pass);  // [B, T, C]: this vocab slice's rows, 0 elsewhere
    reduce_scatter_seq(*tp_, *ops_, *maps_, partial, s.y, *buf_);  // TUTORIAL: the sum, only for my positions
    return s.y;
  }
  void backward_weight(nn::Acts& a, const Tensor& dx) override {
    Saved& s = static_cast<Saved&>(a);
    gather_seq(*tp_, *ops_, *maps_, dx, s.full_dx, *buf_);  // every position's gradient, for my vocab rows
    inner_.backward_weight(*s.inner, s.full_dx);
  }

 private:
  Ops* ops_;
  Communicator* tp_;
  RowMaps* maps_;
  SeqBuffers* buf_;
  ch03::VocabParallelEmbedding inner_;
};

/// The final norm's output gathered along T, then chapter 03's vocab-parallel head and loss
/// over all T positions; dh, a partial sum over vocab slices, reduce-scattered along T.
class SpHead : public nn::HeadPart {
 public:
  struct Saved : nn::Acts {
    std::unique_ptr<nn::Acts> inner;
    Tensor full_h, dh;
  };
  SpHead(Ops& ops, Communicator& tp, RowMaps& maps, SeqBuffers& buf, nn::Param& w)
      : ops_(&ops), tp_(&tp), maps_(&maps), buf_(&buf), inner_(ops, tp, w, /*reduce=*/false) {}
  std::unique_ptr<nn::Acts> new_acts() const override {
    auto s = std::make_unique<Saved>();
    s->inner = inner_.new_acts();
    return s;
  }
  const Tensor& forward(nn::Acts& a, const Tensor& h) override {
    Saved& s = static_cast<Saved&>(a);
    gather_seq(*tp_, *ops_, *maps_, h, s.full_h, *buf_);  // TUTORIAL: f: all-gather along T
    return inner_.forward(*s.inner, s.full_h);           // [B, T, V/tp]
  }
  double loss(nn::Acts& a, const nn::Pass& pass) override { return inner_.loss(*static_cast<Saved&>(a).inner, pass); }
  const Tensor& backward_input(nn::Acts& a) override {
    Saved& s = static_cast<Saved&>(a);
    const Tensor& partial = inner_.backward_input(*s.inner);  // [B, T, C], this vocab slice's share
    reduce_scatter_seq(*tp_, *ops_, *maps_, partial, s.dh, *buf_);
    return s.dh;
  }
  void backward_weight(nn::Acts& a) override { inner_.backward_weight(*static_cast<Saved&>(a).inner); }
  const Tensor& logits(const nn::Acts& a) const override { return inner_.logits(*static_cast<const Saved&>(a).inner); }
  std::vector<std::int32_t> argmax(const Tensor& logits, std::int64_t t) override { return inner_.argmax(logits, t); }

 private:
  Ops* ops_;
  Communicator* tp_;
  RowMaps* maps_;
  SeqBuffers* buf_;
  ch03::VocabParallelLmHead inner_;
};

}  // namespace

std::unique_ptr<nn::Acts> SequenceRegion::new_acts() const {
  auto s = std::make_unique<Saved>();
  s->inner = inner_->new_acts();
  return s;
}

const Tensor& SequenceRegion::forward(nn::Acts& a, const Tensor& x, const nn::Pass& pass, nn::KvCache* cache) {
  Saved& s = static_cast<Saved&>(a);
  gather_seq(*tp_, *ops_, *maps_, x, s.full_x, *buf_);                     // TUTORIAL: f: all-gather along T
  const Tensor& partial = inner_->forward(*s.inner, s.full_x, pass, cache);  // this rank's heads / F slice
  reduce_scatter_seq(*tp_, *ops_, *maps_, partial, s.y, *buf_);             // TUTORIAL: g: reduce-scatter along T
  return s.y;
}

const Tensor& SequenceRegion::backward_input(nn::Acts& a, const Tensor& dy) {
  Saved& s = static_cast<Saved&>(a);
  gather_seq(*tp_, *ops_, *maps_, dy, s.full_dy, *buf_);  // g's backward: all-gather
  const Tensor& partial = inner_->backward_input(*s.inner, s.full_dy);
  reduce_scatter_seq(*tp_, *ops_, *maps_, partial, s.dx, *buf_);  // f's backward: reduce-scatter
  return s.dx;
}

std::unique_ptr<nn::EmbeddingPart> MegatronSpParts::embedding(nn::ParamRegistry& params) {
  return std::make_unique<SpEmbedding>(*ops_, *tp_, maps_, buf_, params.get("embed_tokens.weight"));
}

std::unique_ptr<nn::Block> MegatronSpParts::attention(nn::ParamRegistry& params, int l) {
  const int tp = tp_->size();
  auto heads = std::make_unique<nn::Attention>(*ops_, nn::attention_weights(params, layer_prefix(l) + "self_attn"),
                                               cfg_.heads / tp, cfg_.kv_heads / tp, cfg_.head_dim(),
                                               static_cast<float>(cfg_.rope_theta));
  return std::make_unique<SequenceRegion>(*ops_, *tp_, maps_, buf_, std::move(heads));
}

std::unique_ptr<nn::Block> MegatronSpParts::mlp(nn::ParamRegistry& params, int l) {
  auto slice = std::make_unique<nn::SwiGluMlp>(*ops_, nn::swiglu_weights(params, layer_prefix(l) + "mlp"));
  return std::make_unique<SequenceRegion>(*ops_, *tp_, maps_, buf_, std::move(slice));
}

std::unique_ptr<nn::HeadPart> MegatronSpParts::head(nn::ParamRegistry& params) {
  return std::make_unique<SpHead>(*ops_, *tp_, maps_, buf_, params.get("lm_head.weight"));
}

void mark_norms_partial(nn::ParamRegistry& params) {
  for (nn::Param& p : params.all()) {
    const std::string& n = p.name;
    if (n.size() >= 11 && n.compare(n.size() - 11, 11, "norm.weight") == 0) p.sum_axes |= nn::kSumTp;
  }
}

}  // namespace fivefold::ch05
