// SPDX-License-Identifier: MIT
// Ring attention: key/value blocks around the ring, online softmax, dK/dV riding home.
#include "chapters/05_sequence_parallel/ring_attention.hpp"

#include <limits>
#include <memory>

#include "common/check.hpp"
#include "common/clock.hpp"
#include "common/trace.hpp"
#include "nn/layers.hpp"

namespace fivefold::ch05 {

namespace {

constexpr int kTagK = 51, kTagV = 52, kTagDk = 53, kTagDv = 54;

/// dst [B, H, T_l] columns [off, off + len) <- src [B, H, len].
void put_cols(Tensor& dst, const Tensor& src, std::int64_t off) {
  const std::int64_t rows = dst.numel() / dst.dim(-1), T = dst.dim(-1), len = src.dim(-1);
  for (std::int64_t i = 0; i < rows; ++i) dst.flat(i * T + off, len).copy_from(src.flat(i * len, len));
}

/// The requests of one hop, waited for together.
struct Hop {
  std::vector<std::unique_ptr<Request>> reqs;
  /// Posts the hop of a pair (a, b): sends them to @p next, receives the pair of @p prev into
  /// fresh @p na, @p nb (tags @p ta, @p tb).
  void post(Communicator& sp, Ops& ops, const Tensor& a, const Tensor& b, Tensor& na, Tensor& nb, int next, int prev,
            int ta, int tb) {
    na = ops.empty(a.shape());
    nb = ops.empty(b.shape());
    reqs.push_back(sp.isend(a, next, ta));
    reqs.push_back(sp.isend(b, next, tb));
    reqs.push_back(sp.irecv(na, prev, ta));
    reqs.push_back(sp.irecv(nb, prev, tb));
  }
  void wait() {
    for (auto& r : reqs) r->wait();
    reqs.clear();
  }
};

}  // namespace

RingAttention::RingAttention(Ops& ops, Communicator& sp, const ModelConfig& cfg, nn::AttentionWeights w, SpMode mode,
                             std::int64_t T, int tp)
    : nn::Attention(ops, std::move(w), cfg.heads / tp, cfg.kv_heads / tp, cfg.head_dim(),
                    static_cast<float>(cfg.rope_theta)),
      sp_(&sp) {
  const int n = sp.size();
  for (int r = 0; r < n; ++r) {
    segs_.push_back(local_segments(mode, T, n, r));
    seg_pos_.emplace_back();
    for (const Segment& s : segs_.back()) seg_pos_.back().push_back(nn::positions(ops, s.start, s.len));
  }
  std::int64_t at = 0;
  for (const Segment& s : segs_[sp.rank()]) {
    offsets_.push_back(at);
    at += s.len;
  }
}

bool RingAttention::skip(int a, int src, int b) const {
  const Segment& q = segs_[sp_->rank()][a];
  const Segment& k = segs_[src][b];
  return k.start > q.start + q.len - 1;  // TUTORIAL: every key after every query: nothing visible
}

Tensor RingAttention::segment(const Tensor& x, int rank, int b) const {
  if (segs_[rank].size() == 1) return x;
  std::int64_t off = 0;
  for (int i = 0; i < b; ++i) off += segs_[rank][i].len;
  return nn::slice_dim1(*ops_, x, off, segs_[rank][b].len);
}

std::int64_t RingAttention::forward_bytes(const ModelConfig& cfg, int sp, std::int64_t b, std::int64_t T, int tp) {
  return 2 * (sp - 1) * b * (T / sp) * (cfg.kv_heads / tp) * cfg.head_dim() * 4;
}

std::int64_t RingAttention::backward_bytes(const ModelConfig& cfg, int sp, std::int64_t b, std::int64_t T, int tp) {
  return sp == 1 ? 0 : 2 * (2 * sp - 1) * b * (T / sp) * (cfg.kv_heads / tp) * cfg.head_dim() * 4;
}

std::pair<std::int64_t, std::int64_t> RingAttention::expected_work(SpMode mode, std::int64_t T, int sp, int r) {
  std::int64_t pairs = 0, scores = 0;
  for (const Segment& q : local_segments(mode, T, sp, r))
    for (int src = 0; src < sp; ++src)
      for (const Segment& k : local_segments(mode, T, sp, src))
        if (k.start <= q.start + q.len - 1) {
          ++pairs;
          scores += q.len * k.len;
        }
  return {pairs, scores};
}

void RingAttention::attend(nn::Attention::Saved& base) {
  Saved& s = static_cast<Saved&>(base);
  const int n = sp_->size(), r = sp_->rank(), next = (r + 1) % n, prev = (r + n - 1) % n;
  const std::size_t nseg = segs_[r].size();
  s.qs.clear();
  std::vector<nn::OnlineAttention> acc;
  for (std::size_t a = 0; a < nseg; ++a) {
    s.qs.push_back(segment(s.q, r, static_cast<int>(a)));
    acc.emplace_back(*ops_, s.qs[a], seg_pos_[r][a]);
  }
  Tensor k = s.k, v = s.v;  // the block in hand: my own first
  for (int i = 0; i < n; ++i) {
    const int src = (r - i + n) % n;  // whose block this is
    Hop hop;
    Tensor nk, nv;
    if (i + 1 < n) {  // TUTORIAL: post the next hop before computing this block: the transfer hides behind it
      TraceSpan span("ring: post k/v hop", "comm");
      hop.post(*sp_, *ops_, k, v, nk, nv, next, prev, kTagK, kTagV);
    }
    {
      TraceSpan span("ring: attend block", "compute");
      const double t0 = now_seconds();
      for (std::size_t a = 0; a < nseg; ++a)
        for (std::size_t b = 0; b < segs_[src].size(); ++b) {
          if (skip(static_cast<int>(a), src, static_cast<int>(b))) {
            ++work_.skipped;
            continue;
          }
          acc[a].add_block(segment(k, src, static_cast<int>(b)), segment(v, src, static_cast<int>(b)),
                           seg_pos_[src][b]);  // TUTORIAL: online softmax: rescale by the new max, add
          ++work_.pairs;
          work_.scores += segs_[r][a].len * segs_[src][b].len;
        }
      ops_->synchronize();
      work_.seconds += now_seconds() - t0;
    }
    hop.wait();
    if (i + 1 < n) {
      k = nk;
      v = nv;
    }
  }
  const std::int64_t B = s.q.dim(0), T = s.q.dim(1);
  nn::ensure(*ops_, s.o, s.q.shape());
  nn::ensure(*ops_, s.lse, {B, heads_, T});
  s.os.clear();
  s.lses.clear();
  for (std::size_t a = 0; a < nseg; ++a) {
    s.os.push_back(acc[a].out().clone());
    s.lses.push_back(acc[a].lse().clone());
  }
  if (nseg == 1) {
    s.o.copy_from(s.os[0]);
    s.lse.copy_from(s.lses[0]);
  }
  if (nseg > 1) {
    ops_->fill(s.o, 0.0f);
    for (std::size_t a = 0; a < nseg; ++a) {
      nn::add_into_dim1(*ops_, s.o, s.os[a], offsets_[a]);
      put_cols(s.lse, s.lses[a], offsets_[a]);
    }
  }
}

void RingAttention::attend_backward(nn::Attention::Saved& base) {
  Saved& s = static_cast<Saved&>(base);
  const int n = sp_->size(), r = sp_->rank(), next = (r + 1) % n, prev = (r + n - 1) % n;
  const std::size_t nseg = segs_[r].size();
  std::vector<Tensor> dos, dqs;
  for (std::size_t a = 0; a < nseg; ++a) {
    dos.push_back(segment(s.d_o, r, static_cast<int>(a)));
    dqs.push_back(ops_->zeros(s.qs[a].shape()));
  }
  Tensor k = s.k, v = s.v, dk = ops_->zeros(s.k.shape()), dv = ops_->zeros(s.v.shape());
  for (int i = 0; i < n; ++i) {
    const int src = (r - i + n) % n;
    Hop kv, grads;
    Tensor nk, nv, ndk, ndv;
    if (i + 1 < n) kv.post(*sp_, *ops_, k, v, nk, nv, next, prev, kTagK, kTagV);  // travels while this block computes
    {
      TraceSpan span("ring: attend block backward", "compute");
      const double t0 = now_seconds();
      for (std::size_t a = 0; a < nseg; ++a)
        for (std::size_t b = 0; b < segs_[src].size(); ++b) {
          if (skip(static_cast<int>(a), src, static_cast<int>(b))) continue;
          const bool whole = segs_[src].size() == 1;
          const Tensor kb = segment(k, src, static_cast<int>(b)), vb = segment(v, src, static_cast<int>(b));
          Tensor dkb = whole ? dk : ops_->zeros(kb.shape()), dvb = whole ? dv : ops_->zeros(vb.shape());
          // TUTORIAL: with this query segment's FULL out and lse, the block's share of the gradient is exact
          ops_->attention_backward(dqs[a], dkb, dvb, dos[a], s.qs[a], kb, vb, s.os[a], s.lses[a], seg_pos_[r][a],
                                   seg_pos_[src][b]);
          if (!whole) {
            std::int64_t off = 0;
            for (std::size_t j = 0; j < b; ++j) off += segs_[src][j].len;
            nn::add_into_dim1(*ops_, dk, dkb, off);
            nn::add_into_dim1(*ops_, dv, dvb, off);
          }
        }
      ops_->synchronize();
      work_.seconds += now_seconds() - t0;
    }
    if (n > 1)  // TUTORIAL: dK/dV ride on to the next rank; after the last hop they are home
      grads.post(*sp_, *ops_, dk, dv, ndk, ndv, next, prev, kTagDk, kTagDv);
    kv.wait();
    grads.wait();
    if (i + 1 < n) {
      k = nk;
      v = nv;
    }
    if (n > 1) {
      dk = ndk;
      dv = ndv;
    }
  }
  nn::ensure(*ops_, s.dq, s.q.shape());
  nn::ensure(*ops_, s.dk, s.k.shape());
  nn::ensure(*ops_, s.dv, s.v.shape());
  s.dk.copy_from(dk);  // my own block's, every rank's share added
  s.dv.copy_from(dv);
  if (nseg == 1) {
    s.dq.copy_from(dqs[0]);
  } else {
    ops_->fill(s.dq, 0.0f);
    for (std::size_t a = 0; a < nseg; ++a) nn::add_into_dim1(*ops_, s.dq, dqs[a], offsets_[a]);
  }
}

}  // namespace fivefold::ch05
