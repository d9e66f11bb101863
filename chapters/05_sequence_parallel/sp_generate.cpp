// SPDX-License-Identifier: MIT
// Context-parallel prefill and decoding over a KV cache sharded along the sequence.
#include "chapters/05_sequence_parallel/sp_generate.hpp"

#include <limits>

#include "chapters/05_sequence_parallel/ring_attention.hpp"
#include "common/check.hpp"
#include "nn/decoder.hpp"
#include "nn/layers.hpp"

namespace fivefold::ch05 {

namespace {

constexpr std::int32_t kEmpty = std::numeric_limits<std::int32_t>::max();  // a slot no query can see

/// Ring attention for the prefill; afterwards, attention of one new token over the shards.
class CpAttention : public RingAttention {
 public:
  CpAttention(Ops& ops, Communicator& sp, const ModelConfig& cfg, nn::AttentionWeights w, SpMode mode,
              std::int64_t prompt)
      : RingAttention(ops, sp, cfg, std::move(w), mode, prompt), sp_(&sp), prompt_(prompt) {}
  bool prefill = true;        ///< set by cp_generate
  std::int64_t used = 0;      ///< cache slots holding a position

  const Tensor& forward(nn::Acts& acts, const Tensor& a, const nn::Pass& pass, nn::KvCache* cache) override {
    Saved& s = static_cast<Saved&>(acts);
    if (!cache) return RingAttention::forward(acts, a, pass, nullptr);
    if (prefill) {  // TUTORIAL: the prompt through ring attention; my positions' k/v stay here
      const Tensor& y = RingAttention::forward(acts, a, pass, nullptr);
      const std::int64_t B = a.dim(0), Tl = a.dim(1), row = kv_heads_ * head_dim_, smax = cache->k.dim(1);
      for (std::int64_t b = 0; b < B; ++b) {
        cache->k.flat(b * smax * row, Tl * row).copy_from(s.k.flat(b * Tl * row, Tl * row));
        cache->v.flat(b * smax * row, Tl * row).copy_from(s.v.flat(b * Tl * row, Tl * row));
      }
      cache->k_pos.flat(0, Tl).copy_from(pass.pos);
      used = Tl;
      return y;
    }
    return decode(s, a, pass.start, *cache);
  }

 private:
  const Tensor& decode(Saved& s, const Tensor& a, std::int64_t start, nn::KvCache& cache) {
    const int n = sp_->size();
    const std::int64_t B = a.dim(0), row = kv_heads_ * head_dim_, smax = cache.k.dim(1);
    const Tensor pos = nn::positions(*ops_, start, 1);
    project(s, a, pos);  // every rank: the new token's q, k, v
    if ((start - prompt_) % n == sp_->rank()) {  // TUTORIAL: round robin: token P + i is kept by rank i % sp
      FIVEFOLD_CHECK(used < smax, "cp_generate: this rank's cache of ", smax, " slots is full");
      for (std::int64_t b = 0; b < B; ++b) {
        cache.k.flat((b * smax + used) * row, row).copy_from(s.k.flat(b * row, row));
        cache.v.flat((b * smax + used) * row, row).copy_from(s.v.flat(b * row, row));
      }
      cache.k_pos.flat(used, 1).copy_from(pos);
      ++used;
    }
    Tensor o = ops_->empty(s.q.shape()), lse = ops_->empty({B, heads_, 1});
    // TUTORIAL: my shard only: a rank that holds no visible key gives out 0, lse -inf
    ops_->attention_forward(o, lse, s.q, cache.k, cache.v, pos, cache.k_pos);
    Tensor all_o = ops_->empty({n * o.numel()}), all_lse = ops_->empty({n * lse.numel()});
    sp_->all_gather(o, all_o);
    sp_->all_gather(lse, all_lse);
    nn::ensure(*ops_, s.o, s.q.shape());
    nn::ensure(*ops_, s.lse, lse.shape());
    s.o.copy_from(all_o.flat(0, o.numel()));
    s.lse.copy_from(all_lse.flat(0, lse.numel()));
    for (int r = 1; r < n; ++r)  // TUTORIAL: the log-sum-exp merge, in rank order: the same bits everywhere
      ops_->attention_merge(s.o, s.lse, all_o.flat(r * o.numel(), o.numel()).view(o.shape()),
                            all_lse.flat(r * lse.numel(), lse.numel()).view(lse.shape()));
    return output_projection(s, B, 1);
  }

  Communicator* sp_;
  std::int64_t prompt_;
};

class CpParts : public nn::SerialParts {
 public:
  CpParts(Ops& ops, Communicator& sp, const ModelConfig& cfg, SpMode mode, std::int64_t prompt)
      : nn::SerialParts(ops, cfg), ops_(&ops), sp_(&sp), cfg_(cfg), mode_(mode), prompt_(prompt) {}
  std::unique_ptr<nn::Block> attention(nn::ParamRegistry& params, int l) override {
    auto a = std::make_unique<CpAttention>(*ops_, *sp_, cfg_,
                                           nn::attention_weights(params, "layers." + std::to_string(l) + ".self_attn"),
                                           mode_, prompt_);
    layers.push_back(a.get());
    return a;
  }
  std::vector<CpAttention*> layers;

 private:
  Ops* ops_;
  Communicator* sp_;
  ModelConfig cfg_;
  SpMode mode_;
  std::int64_t prompt_;
};

OpCount counted(Communicator& g, const std::string& op) {
  const auto it = g.counts().find(op);
  return it == g.counts().end() ? OpCount{} : it->second;
}

}  // namespace

std::int64_t decode_bytes_per_token(const ModelConfig& cfg, std::int64_t batch) {
  return cfg.layers * (batch * cfg.heads * cfg.head_dim() + batch * cfg.heads) * 4;
}

Tensor cp_generate(Ops& ops, Communicator& sp, const ModelConfig& cfg, SpMode mode, const Tensor& prompt,
                   int new_tokens, CpGenStats* stats) {
  const int n = sp.size(), r = sp.rank();
  const Tensor hp = prompt.to(Device::host);
  const std::int64_t B = hp.dim(0), P = hp.dim(1), total = P + new_tokens;
  ModelConfig c = cfg;
  c.seq = static_cast<int>(P);
  const std::string bad = check_layout(mode, c, n);
  FIVEFOLD_CHECK(bad.empty() && (mode == SpMode::ring || mode == SpMode::zigzag), "cp_generate: ",
                 bad.empty() ? "the prefill runs ring or zigzag" : bad);
  nn::ParamRegistry params(ops, cfg.seed);
  params.add_model(cfg);
  CpParts parts(ops, sp, cfg, mode, P);
  nn::Decoder model(ops, cfg, params, parts);
  nn::Chunk& chunk = model.chunk(0);
  auto acts = chunk.new_acts();

  // Each rank's cache: its P/sp prompt positions, then its share of the new tokens.
  const std::int64_t cap = P / n + (new_tokens + n - 1) / n, hd = cfg.head_dim();
  std::vector<nn::KvCache> caches;
  const Tensor empty_pos = ops.upload(Tensor::from_vector(std::vector<std::int32_t>(cap, kEmpty), {cap}));
  for (int l = 0; l < cfg.layers; ++l) {
    caches.emplace_back(ops, B, cap, cfg.kv_heads, hd);
    caches.back().k_pos.copy_from(empty_pos);
  }
  CpGenStats st;
  st.kv_bytes_per_slot = 2LL * cfg.layers * B * cfg.kv_heads * hd * 4;
  auto slots = [&] { st.kv_slots.push_back(parts.layers.empty() ? 0 : parts.layers[0]->used); };

  std::vector<std::int32_t> seq(B * total, 0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < P; ++t) seq[b * total + t] = hp.at<std::int32_t>(b * P + t);

  // Prefill: my positions of the prompt through the model, attention by the ring.
  sp.reset_counts();
  const std::vector<std::int32_t> mine = local_positions(mode, P, n, r);
  const auto Tl = static_cast<std::int64_t>(mine.size());
  std::vector<std::int32_t> tok(B * Tl);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t j = 0; j < Tl; ++j) tok[b * Tl + j] = seq[b * total + mine[j]];
  nn::Pass& pass = acts->pass;
  pass.tokens = ops.upload(Tensor::from_vector(tok, {B, Tl}));
  pass.pos = ops.upload(Tensor::from_vector(mine, {Tl}));
  pass.start = 0;
  pass.caches = &caches;
  pass.dropless = true;
  const Tensor& logits = chunk.forward(*acts, Tensor());
  int owner = 0;  // who holds position P-1, and where
  std::int64_t at = 0;
  for (int q = 0; q < n; ++q) {
    const std::vector<std::int32_t> p = local_positions(mode, P, n, q);
    for (std::size_t j = 0; j < p.size(); ++j)
      if (p[j] == P - 1) {
        owner = q;
        at = static_cast<std::int64_t>(j);
      }
  }
  std::vector<std::int32_t> first(B, 0);
  if (r == owner) first = chunk.head().argmax(logits, at);
  Tensor ids = ops.upload(Tensor::from_vector(first, {B}));
  sp.broadcast(ids, owner);  // TUTORIAL: the first new token comes from the rank holding the prompt's end
  const Tensor hid = ids.to(Device::host);
  if (P < total)
    for (std::int64_t b = 0; b < B; ++b) seq[b * total + P] = hid.at<std::int32_t>(b);
  st.prefill = counted(sp, "isend");
  slots();

  // Decode: every rank runs each new token; the attention merges the shards.
  for (CpAttention* a : parts.layers) a->prefill = false;
  sp.reset_counts();
  for (std::int64_t cur = P + 1; cur < total; ++cur) {
    std::vector<std::int32_t> in(B);
    for (std::int64_t b = 0; b < B; ++b) in[b] = seq[b * total + cur - 1];
    pass.tokens = ops.upload(Tensor::from_vector(in, {B, 1}));
    pass.pos = nn::positions(ops, cur - 1, 1);
    pass.start = cur - 1;
    const Tensor& l = chunk.forward(*acts, Tensor());
    const std::vector<std::int32_t> next = chunk.head().argmax(l, 0);
    for (std::int64_t b = 0; b < B; ++b) seq[b * total + cur] = next[b];
    slots();
  }
  st.decode = counted(sp, "all_gather");
  pass.caches = nullptr;
  if (stats) *stats = st;
  return Tensor::from_vector(seq, {B, total});
}

}  // namespace fivefold::ch05
