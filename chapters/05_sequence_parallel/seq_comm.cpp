// SPDX-License-Identifier: MIT
// The collectives of a split sequence: a permutation beside each call.
#include "chapters/05_sequence_parallel/seq_comm.hpp"

#include "common/check.hpp"
#include "common/trace.hpp"
#include "nn/layers.hpp"

namespace fivefold::ch05 {

namespace {

std::string key_of(const char* what, std::initializer_list<std::int64_t> v) {
  std::string k = what;
  for (std::int64_t x : v) k += " " + std::to_string(x);
  return k;
}

/// @p t viewed as rows of @p width.
Tensor rows(const Tensor& t, std::int64_t width) { return t.view({t.numel() / width, width}); }

}  // namespace

const Tensor& RowMaps::make(const std::string& key, std::vector<std::int32_t> idx) {
  auto it = maps_.find(key);
  if (it == maps_.end()) {
    const auto n = static_cast<std::int64_t>(idx.size());
    it = maps_.emplace(key, ops_->upload(Tensor::from_vector(idx, {n}))).first;
  }
  return it->second;
}

const Tensor& RowMaps::model_from_blocks(std::int64_t B, int sp, std::int64_t Tl) {
  const std::string key = key_of("mfb", {B, sp, Tl});
  if (maps_.count(key)) return maps_.at(key);
  std::vector<std::int32_t> idx;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < sp; ++i)
      for (std::int64_t t = 0; t < Tl; ++t) idx.push_back(static_cast<std::int32_t>((i * B + b) * Tl + t));
  return make(key, std::move(idx));
}

const Tensor& RowMaps::blocks_from_model(std::int64_t B, int sp, std::int64_t Tl) {
  const std::string key = key_of("bfm", {B, sp, Tl});
  if (maps_.count(key)) return maps_.at(key);
  std::vector<std::int32_t> idx;
  for (std::int64_t i = 0; i < sp; ++i)
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < Tl; ++t) idx.push_back(static_cast<std::int32_t>(b * sp * Tl + i * Tl + t));
  return make(key, std::move(idx));
}

const Tensor& RowMaps::head_rows(std::int64_t B, std::int64_t Tl, std::int64_t per, const std::vector<int>& blocks) {
  std::string key = key_of("heads", {B, Tl, per});
  for (int j : blocks) key += "," + std::to_string(j);
  if (maps_.count(key)) return maps_.at(key);
  std::vector<std::int32_t> idx;
  for (int blk : blocks)
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < Tl; ++t) idx.push_back(static_cast<std::int32_t>((b * Tl + t) * per + blk));
  return make(key, std::move(idx));
}

void gather_seq(Communicator& g, Ops& ops, RowMaps& maps, const Tensor& local, Tensor& full, SeqBuffers& buf) {
  const std::int64_t B = local.dim(0), Tl = local.dim(1), C = local.numel() / (B * Tl);
  const int sp = g.size();
  nn::ensure(ops, buf.recv, {sp * B * Tl, C});
  {
    TraceSpan span("all_gather (sequence)", "comm");
    g.all_gather(local, buf.recv);  // TUTORIAL: every rank's T/sp positions, rank by rank
  }
  Shape shape = local.shape();
  shape[1] = sp * Tl;
  nn::ensure(ops, full, shape);
  Tensor out = rows(full, C);
  ops.gather_rows(out, buf.recv, maps.model_from_blocks(B, sp, Tl), Tensor());  // [sp, B, Tl] -> [B, T]
}

void reduce_scatter_seq(Communicator& g, Ops& ops, RowMaps& maps, const Tensor& full, Tensor& local,
                        SeqBuffers& buf) {
  const int sp = g.size();
  const std::int64_t B = full.dim(0), T = full.dim(1), Tl = T / sp, C = full.numel() / (B * T);
  FIVEFOLD_CHECK(T % sp == 0, "reduce_scatter_seq: T ", T, " is not divisible by the group's ", sp, " ranks");
  nn::ensure(ops, buf.send, {sp * B * Tl, C});
  ops.gather_rows(buf.send, rows(full, C), maps.blocks_from_model(B, sp, Tl), Tensor());  // [B, T] -> [sp, B, Tl]
  Shape shape = full.shape();
  shape[1] = Tl;
  nn::ensure(ops, local, shape);
  TraceSpan span("reduce_scatter (sequence)", "comm");
  g.reduce_scatter(buf.send, local);  // TUTORIAL: rank r keeps the sum of block r: its own positions
}

void seq_to_heads(Communicator& g, Ops& ops, RowMaps& maps, const Tensor& x, Tensor& out, std::int64_t n,
                  const std::vector<int>& blocks, SeqBuffers& buf) {
  const int sp = g.size();
  const std::int64_t B = x.dim(0), Tl = x.dim(1), Hx = x.dim(2), hd = x.dim(3), w = n * hd;
  FIVEFOLD_CHECK(static_cast<int>(blocks.size()) == sp && Hx % n == 0, "seq_to_heads: ", Hx,
                 " heads cannot be sent in blocks of ", n, " to ", sp, " ranks");
  nn::ensure(ops, buf.send, {sp * B * Tl, w});
  ops.gather_rows(buf.send, rows(x, w), maps.head_rows(B, Tl, Hx / n, blocks), Tensor());  // rank j's heads first
  nn::ensure(ops, buf.recv, buf.send.shape());
  {
    TraceSpan span("all_to_all (sequence -> heads)", "comm");
    g.all_to_all(buf.send, buf.recv);  // TUTORIAL: my positions of your heads out, your positions of mine in
  }
  nn::ensure(ops, out, {B, sp * Tl, n, hd});
  Tensor o = rows(out, w);
  ops.gather_rows(o, buf.recv, maps.model_from_blocks(B, sp, Tl), Tensor());
}

void heads_to_seq(Communicator& g, Ops& ops, RowMaps& maps, const Tensor& y, Tensor& x, std::int64_t n,
                  const std::vector<int>& blocks, SeqBuffers& buf) {
  const int sp = g.size();
  const std::int64_t B = x.dim(0), Tl = x.dim(1), Hx = x.dim(2), hd = x.dim(3), w = n * hd;
  FIVEFOLD_CHECK(y.dim(1) == sp * Tl && y.dim(2) == n, "heads_to_seq: ", y.str(), " is not ", sp, " ranks' ", Tl,
                 " positions of ", n, " heads");
  nn::ensure(ops, buf.send, {sp * B * Tl, w});
  ops.gather_rows(buf.send, rows(y, w), maps.blocks_from_model(B, sp, Tl), Tensor());  // rank i's positions first
  nn::ensure(ops, buf.recv, buf.send.shape());
  {
    TraceSpan span("all_to_all (heads -> sequence)", "comm");
    g.all_to_all(buf.send, buf.recv);
  }
  Tensor xr = rows(x, w);
  ops.scatter_add_rows(xr, buf.recv, maps.head_rows(B, Tl, Hx / n, blocks), Tensor());  // replicas summed
}

}  // namespace fivefold::ch05
