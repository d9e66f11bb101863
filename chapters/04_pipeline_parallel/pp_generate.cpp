// SPDX-License-Identifier: MIT
// Greedy generation through the stages, requests in flight, KV caches per stage.
#include "chapters/04_pipeline_parallel/pp_generate.hpp"

#include "common/check.hpp"
#include "common/clock.hpp"
#include "nn/attention.hpp"

namespace fivefold::ch04 {

Tensor pipelined_generate(nn::Decoder& stage, StageLink& link, const Tensor& prompts, int requests, int new_tokens,
                          GenerationTimes* times) {
  FIVEFOLD_CHECK(stage.num_chunks() == 1, "pipelined_generate: a stage of one chunk (no interleaving)");
  FIVEFOLD_CHECK(prompts.ndim() == 2 && prompts.dtype() == DType::i32 && prompts.dim(0) % requests == 0,
                 "pipelined_generate: prompts ", prompts.str(), " must be int32 [R*b, P] with R = ", requests);
  Ops& ops = stage.ops();
  const ModelConfig& cfg = stage.config();
  const int p = link.group().size(), r = link.group().rank();
  nn::Chunk& chunk = stage.chunk(0);
  const std::int64_t b = prompts.dim(0) / requests, P = prompts.dim(1), total = P + new_tokens, C = cfg.dim;
  const std::int64_t hd = cfg.head_dim();
  // TUTORIAL: each stage caches the keys and values of ITS layers only, per request.
  std::vector<std::vector<nn::KvCache>> caches(requests);
  std::vector<std::unique_ptr<nn::ChunkActs>> acts(requests);
  for (int q = 0; q < requests; ++q) {
    for (int l = chunk.first_layer(); l < chunk.last_layer(); ++l) caches[q].emplace_back(ops, b, total, cfg.kv_heads, hd);
    acts[q] = chunk.new_acts();
  }
  const Tensor host = prompts.to(Device::host);
  std::vector<std::int32_t> seq(prompts.dim(0) * total, 0);
  for (std::int64_t row = 0; row < prompts.dim(0); ++row)
    for (std::int64_t t = 0; t < P; ++t) seq[row * total + t] = host.at<std::int32_t>(row * P + t);
  auto append = [&](int q, std::int64_t cur, const std::vector<std::int32_t>& ids) {  // the first stage keeps them
    for (std::int64_t i = 0; i < b; ++i) seq[(q * b + i) * total + cur] = ids[i];
  };
  std::vector<std::vector<std::int32_t>> local(requests);  // p == 1: the token stays on the one rank
  {
    Uncounted quiet(link.group());
    link.group().barrier();
  }
  const double t0 = now_seconds();
  GenerationTimes out;
  // Round cur computes token cur of every request; the round after collects it on the first stage.
  for (std::int64_t cur = P; cur <= total; ++cur) {
    for (int q = 0; q < requests; ++q) {
      if (r == 0 && cur > P) {  // token cur-1 of request q comes back from the last stage
        if (p == 1) {
          append(q, cur - 1, local[q]);
        } else {
          const Tensor ids = link.recv({b}, DType::i32, p - 1, {'T', q, static_cast<int>(cur - 1)}).to(Device::host);
          append(q, cur - 1, std::vector<std::int32_t>(ids.data<std::int32_t>(), ids.data<std::int32_t>() + b));
        }
        if (cur == P + 1 && q == requests - 1) out.prefill_seconds = now_seconds() - t0;
      }
      if (cur == total) continue;
      // TUTORIAL: prefill the prompt once, then one token per round over the KV caches
      const std::int64_t start = cur == P ? 0 : cur - 1, n = cur - start;
      nn::ChunkActs& a = *acts[q];
      a.pass.pos = nn::positions(ops, start, n);
      a.pass.start = start;
      a.pass.caches = &caches[q];
      a.pass.dropless = true;
      Tensor x;
      if (r == 0) {
        std::vector<std::int32_t> in(b * n);
        for (std::int64_t i = 0; i < b; ++i)
          for (std::int64_t t = 0; t < n; ++t) in[i * n + t] = seq[(q * b + i) * total + start + t];
        a.pass.tokens = ops.upload(Tensor::from_vector(in, {b, n}));
      } else {
        x = link.recv({b, n, C}, DType::f32, r - 1, {'F', q, static_cast<int>(cur)});  // [b, n, C]
      }
      const Tensor& y = chunk.forward(a, x);
      if (r < p - 1) {
        link.send(y.clone(), r + 1, {'F', q, static_cast<int>(cur)});  // a copy: the next round reuses the buffer
      } else {
        const std::vector<std::int32_t> ids = chunk.head().argmax(y, n - 1);  // greedy, ties to the lower id
        if (p == 1)
          local[q] = ids;
        else
          link.send(ops.upload(Tensor::from_vector(ids, {b})), 0, {'T', q, static_cast<int>(cur)});
      }
    }
  }
  link.wait_all();
  for (auto& a : acts) a->pass.caches = nullptr;
  out.seconds = now_seconds() - t0;
  if (times) *times = out;
  if (r != 0) return Tensor();
  return Tensor::from_vector(seq, {prompts.dim(0), total});
}

}  // namespace fivefold::ch04
