// SPDX-License-Identifier: MIT
// A chunk of layers run pass by pass (B and W apart, hooks around each unit), and the chunks of
// one rank with the whole-model conveniences (decoder_layer.cpp has the layer itself).
#include "nn/decoder.hpp"

#include "common/check.hpp"
#include "common/trace.hpp"

namespace fivefold::nn {

namespace {

void call(const std::function<void(int)>& f, int u) {
  if (f) f(u);
}

void tell(const BlockObserver& seen, const std::string& label) {
  if (seen) seen(label);
}

}  // namespace

// ---- Chunk

Chunk::Chunk(Ops& ops, const ModelConfig& cfg, ParamRegistry& params, PartFactory& parts, int first, int last)
    : ops_(&ops), first_(first), last_(last), L_(cfg.layers) {
  FIVEFOLD_CHECK(0 <= first && first <= last && last <= cfg.layers, "Chunk: layers [", first, ", ", last,
                 ") are not a range of the model's ", cfg.layers, " layers");
  if (first == 0) embed_ = parts.embedding(params);
  for (int l = first; l < last; ++l) layers_.emplace_back(ops, params, cfg, l, parts);
  if (last == cfg.layers) {
    norm_ = std::make_unique<RmsNorm>(ops, params.get("norm.weight"), static_cast<float>(cfg.norm_eps));
    head_ = parts.head(params);
  }
  for (int u = 0; u <= cfg.layers + 1; ++u) {
    const std::string name = u == 0 ? "embed" : u == cfg.layers + 1 ? "head" : "layers." + std::to_string(u - 1);
    fwd_names_.push_back("fwd " + name);
    bwd_names_.push_back("bwd " + name);
    b_names_.push_back("B " + name);
    w_names_.push_back("W " + name);
  }
}

std::unique_ptr<ChunkActs> Chunk::new_acts() const {
  auto a = std::make_unique<ChunkActs>();
  a->owner = this;
  if (embed_) a->embed = embed_->new_acts();
  for (const DecoderLayer& layer : layers_) a->layers.push_back(layer.new_acts());
  if (head_) a->head = head_->new_acts();
  return a;
}

void Chunk::check_owner(const ChunkActs& a) const {
  FIVEFOLD_CHECK(a.owner == this, "Chunk [", first_, ", ", last_, "): these activations were made by another chunk; ",
                 "pass each chunk the ChunkActs of its own new_acts()");
}

const Tensor& Chunk::forward(ChunkActs& a, const Tensor& x, const UnitHooks& hooks) {
  check_owner(a);
  a.ce = 0.0;
  const Tensor* h = &x;
  if (embed_) {
    call(hooks.before_forward, 0);
    {
      TraceSpan span(fwd_names_[0].c_str(), "compute");
      h = &embed_->forward(*a.embed, a.pass);  // [b, T, C]
    }
    tell(seen_, "embedding");
    call(hooks.after_forward, 0);
  }
  a.aux = 0.0;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const int u = unit_of_layer(static_cast<int>(i));
    call(hooks.before_forward, u);
    {
      TraceSpan span(fwd_names_[u].c_str(), "compute");
      KvCache* cache = a.pass.caches ? &(*a.pass.caches)[i] : nullptr;
      h = &layers_[i].forward(*a.layers[i], *h, a.pass, cache, seen_);  // [b, T, C]
      a.aux += layers_[i].aux_loss(*a.layers[i]);
    }
    call(hooks.after_forward, u);
  }
  if (head_) {
    const int u = L_ + 1;
    call(hooks.before_forward, u);
    {
      TraceSpan span(fwd_names_[u].c_str(), "compute");
      h = &head_->forward(*a.head, norm_->forward(a.norm, *h));  // [b, T, V or V/tp]
      if (a.pass.targets.defined()) {
        a.ce = head_->loss(*a.head, a.pass);  // mean over this pass's tokens
        tell(seen_, "lm head + loss");
      }
    }
    call(hooks.after_forward, u);
  }
  a.out = *h;
  return *h;
}

void Chunk::head_backward_input(ChunkActs& a) {
  a.dx = norm_->backward(a.norm, head_->backward_input(*a.head));  // [b, T, C]
}

const Tensor& Chunk::backward_input(ChunkActs& a, const Tensor& dy, const UnitHooks& hooks) {
  check_owner(a);
  a.dx = dy;  // a handle: the pass keeps the caller's gradient alive until its W
  if (head_) {
    call(hooks.before_backward, L_ + 1);
    TraceSpan span(b_names_[L_ + 1].c_str(), "compute");
    head_backward_input(a);
  }
  for (int i = static_cast<int>(layers_.size()) - 1; i >= 0; --i) {
    call(hooks.before_backward, unit_of_layer(i));
    TraceSpan span(b_names_[unit_of_layer(i)].c_str(), "compute");
    a.dx = layers_[i].backward_input(*a.layers[i], a.dx, seen_);
  }
  if (embed_) call(hooks.before_backward, 0);
  return a.dx;
}

void Chunk::backward_weight(ChunkActs& a, const UnitHooks& hooks) {
  check_owner(a);
  if (head_) {
    {
      TraceSpan span(w_names_[L_ + 1].c_str(), "compute");
      head_->backward_weight(*a.head);
    }
    tell(seen_, "lm head");
    call(hooks.after_backward, L_ + 1);
  }
  for (int i = static_cast<int>(layers_.size()) - 1; i >= 0; --i) {
    {
      TraceSpan span(w_names_[unit_of_layer(i)].c_str(), "compute");
      layers_[i].backward_weight(*a.layers[i], seen_);
    }
    call(hooks.after_backward, unit_of_layer(i));
  }
  if (embed_) {
    TraceSpan span(w_names_[0].c_str(), "compute");
    embed_->backward_weight(*a.embed, a.dx);  // a.dx: d loss / d embedding output
    tell(seen_, "embedding");
    call(hooks.after_backward, 0);
  }
}

const Tensor& Chunk::backward(ChunkActs& a, const Tensor& dy, const UnitHooks& hooks) {
  check_owner(a);
  a.dx = dy;  // a handle: the pass keeps the caller's gradient alive until its W
  if (head_) {
    const int u = L_ + 1;
    call(hooks.before_backward, u);
    {
      TraceSpan span(bwd_names_[u].c_str(), "compute");
      head_backward_input(a);
      head_->backward_weight(*a.head);
    }
    tell(seen_, "lm head");
    call(hooks.after_backward, u);
  }
  for (int i = static_cast<int>(layers_.size()) - 1; i >= 0; --i) {
    const int u = unit_of_layer(i);
    call(hooks.before_backward, u);
    {
      TraceSpan span(bwd_names_[u].c_str(), "compute");
      a.dx = layers_[i].backward_input(*a.layers[i], a.dx, seen_);
      layers_[i].backward_weight(*a.layers[i], seen_);
    }
    call(hooks.after_backward, u);
  }
  if (embed_) {
    call(hooks.before_backward, 0);
    {
      TraceSpan span(bwd_names_[0].c_str(), "compute");
      embed_->backward_weight(*a.embed, a.dx);  // no input gradient: tokens are not differentiable
    }
    tell(seen_, "embedding");
    call(hooks.after_backward, 0);
  }
  return a.dx;
}

// ---- Decoder

Decoder::Decoder(Ops& ops, const ModelConfig& cfg, ParamRegistry& params, PartFactory& parts,
                 std::vector<std::pair<int, int>> chunks)
    : ops_(&ops), cfg_(cfg), registry_(&params) {
  cfg.validate();
  if (chunks.empty()) chunks.emplace_back(0, cfg.layers);
  for (const auto& [first, last] : chunks)
    chunks_.push_back(std::make_unique<Chunk>(ops, cfg, params, parts, first, last));
}

void Decoder::set_observer(BlockObserver seen) {
  seen_ = seen;
  for (auto& c : chunks_) c->set_observer(seen);
}

Chunk& Decoder::whole() {
  FIVEFOLD_CHECK(chunks_.size() == 1 && chunks_[0]->has_embedding() && chunks_[0]->has_head(),
                 "Decoder: this rank holds ", chunks_.size(), " chunk(s), not the whole model; run the chunks one by one");
  if (!whole_) whole_ = chunks_[0]->new_acts();
  return *chunks_[0];
}

Tensor Decoder::pass_positions(const Tensor& current, std::int64_t T) {
  if (pos_.defined()) {
    FIVEFOLD_CHECK(pos_.numel() == T, "Decoder: ", T, " tokens per sequence but set_positions gave ", pos_.numel());
    return pos_;
  }
  return current.defined() && current.numel() == T ? current : positions(*ops_, 0, T);
}

const ChunkActs& Decoder::last_pass() const {
  FIVEFOLD_CHECK(whole_ && whole_->out.defined(), "Decoder: no forward has run yet (logits and losses come from it)");
  return *whole_;
}

const Tensor& Decoder::forward_logits(const Tensor& tokens, const UnitHooks& hooks) {
  FIVEFOLD_CHECK(tokens.ndim() == 2 && tokens.dtype() == DType::i32, "Decoder: tokens ", tokens.str(),
                 " must be int32 [B, T]");
  Chunk& c = whole();
  Pass& p = whole_->pass;
  p.tokens = ops_->upload(tokens);
  p.targets = Tensor();
  p.pos = pass_positions(p.pos, tokens.dim(1));
  return c.forward(*whole_, Tensor(), hooks);  // [B, T, V or V/tp]
}

double Decoder::forward(const Tensor& tokens, const Tensor& targets, const UnitHooks& hooks, double loss_scale,
                        double aux_scale) {
  FIVEFOLD_CHECK(tokens.ndim() == 2 && tokens.dtype() == DType::i32, "Decoder: tokens ", tokens.str(),
                 " must be int32 [B, T]");
  FIVEFOLD_CHECK(targets.shape() == tokens.shape() && targets.dtype() == DType::i32, "Decoder: targets ",
                 targets.str(), " must be int32 of the tokens' shape ", tokens.str());
  Chunk& c = whole();
  Pass& p = whole_->pass;
  p.tokens = ops_->upload(tokens);
  p.targets = ops_->upload(targets);
  p.loss_scale = loss_scale;
  p.aux_scale = aux_scale;
  p.pos = pass_positions(p.pos, tokens.dim(1));
  c.forward(*whole_, Tensor(), hooks);
  return whole_->ce + whole_->aux;
}

void Decoder::backward(const UnitHooks& hooks) {
  FIVEFOLD_CHECK(whole_ && whole_->pass.targets.defined(), "Decoder::backward: no forward with targets to go back from");
  whole().backward(*whole_, Tensor(), hooks);
}

Tensor Decoder::generate(const Tensor& prompt, int new_tokens, bool use_cache) {
  FIVEFOLD_CHECK(prompt.ndim() == 2 && prompt.dtype() == DType::i32 && prompt.dim(1) >= 1, "generate: prompt ",
                 prompt.str(), " must be int32 [B, P] with P >= 1");
  const std::int64_t B = prompt.dim(0), P = prompt.dim(1), total = P + new_tokens;
  Chunk& c = whole();
  const Tensor hprompt = prompt.to(Device::host);
  std::vector<std::int32_t> seq(B * total, 0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < P; ++t) seq[b * total + t] = hprompt.at<std::int32_t>(b * P + t);
  // TUTORIAL: each rank caches only the kv heads it holds (all of them serially, Hkv/tp under TP).
  const std::int64_t hd = cfg_.head_dim(), kv_here = registry_->get("layers.0.self_attn.k_proj.weight").value.dim(0) / hd;
  std::vector<KvCache> caches;
  if (use_cache)
    for (int l = 0; l < cfg_.layers; ++l) caches.emplace_back(*ops_, B, total, kv_here, hd);
  gen_ = c.new_acts();  // generation's own activations: a training pass in flight stays intact
  ChunkActs* gen = gen_.get();
  c.set_observer({});       // per token, not per block
  for (std::int64_t cur = P; cur < total; ++cur) {
    // Without a cache the whole sequence so far is recomputed; with one, the prompt is prefilled
    // once and then one token per step is fed.
    const std::int64_t start = !use_cache ? 0 : cur == P ? 0 : cur - 1, n = cur - start;
    std::vector<std::int32_t> in(B * n);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < n; ++t) in[b * n + t] = seq[b * total + start + t];
    gen->pass.tokens = ops_->upload(Tensor::from_vector(in, {B, n}));
    gen->pass.pos = positions(*ops_, start, n);
    gen->pass.start = start;
    gen->pass.caches = use_cache ? &caches : nullptr;
    gen->pass.dropless = true;  // TUTORIAL: MoE layers route every token while generating
    const Tensor& logits = c.forward(*gen, Tensor());
    const std::vector<std::int32_t> next = c.head().argmax(logits, n - 1);
    for (std::int64_t b = 0; b < B; ++b) seq[b * total + cur] = next[b];
    tell(seen_, "token " + std::to_string(cur - P));
  }
  gen->pass.caches = nullptr;  // the caches end here
  c.set_observer(seen_);
  return Tensor::from_vector(seq, {B, total});
}

}  // namespace fivefold::nn
