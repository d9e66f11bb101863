// SPDX-License-Identifier: MIT
// Chapter 03's layers against the serial ones at the world size this runs on (np 1, 2, 3, 4):
// the layout rules, the column/row-parallel linears, the MLP, attention for several GQA layouts,
// the vocab-parallel embedding and cross-entropy, the argmax, and their counted all-reduces.
#include <string>

#include "chapters/03_tensor_parallel/tp_costs.hpp"
#include "chapters/03_tensor_parallel/tp_model.hpp"
#include "common/check.hpp"
#include "nn/model.hpp"
#include "tp_test_util.hpp"

namespace fivefold::test {
namespace {

using ch03::Split;

std::string usage_error(const ModelConfig& c, int tp, int world) {
  try {
    ch03::validate_tp(c, tp, world);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(TpLayout, ValidDegreesAndRejections) {
  ModelConfig c;
  c.heads = 8, c.kv_heads = 4, c.ffn = 128, c.vocab = 64;
  EXPECT_EQ(ch03::valid_tp_degrees(c), (std::vector<int>{1, 2, 4}));
  const std::string heads = usage_error(c, 3, 3);
  EXPECT_NE(heads.find("--tp 3 does not divide --heads 8"), std::string::npos) << heads;
  EXPECT_NE(heads.find("valid --tp for this model: 1, 2, 4"), std::string::npos) << heads;
  EXPECT_EQ(heads.find('\n'), std::string::npos) << "one line: " << heads;
  EXPECT_NE(usage_error(c, 8, 8).find("--kv-heads 4"), std::string::npos);
  c.ffn = 130;
  EXPECT_NE(usage_error(c, 4, 4).find("--ffn 130"), std::string::npos);
  c.ffn = 128, c.vocab = 66;
  EXPECT_NE(usage_error(c, 4, 4).find("--vocab 66"), std::string::npos);
  c.vocab = 64;
  EXPECT_NE(usage_error(c, 2, 3).find("world size 3"), std::string::npos);
  EXPECT_EQ(usage_error(c, 2, 4), "");
  EXPECT_EQ(ch03::split_of("layers.3.self_attn.o_proj.weight"), Split::cols);
  EXPECT_EQ(ch03::split_of("layers.0.mlp.up_proj.weight"), Split::rows);
  EXPECT_EQ(ch03::split_of("norm.weight"), Split::replicated);
}

class TpLayers : public TpTest {};

TEST_F(TpLayers, ColumnThenRowLinear) {
  Communicator& tp = world();
  const int n = tp.size(), r = tp.rank();
  const ModelConfig cfg = small_config(n);
  const std::int64_t N = 16, C = cfg.dim, F = cfg.ffn;
  nn::Model serial(ops(), cfg);
  ch03::TpParams shards(ops(), cfg, r, n);
  nn::Param &wg = shards.get("layers.1.mlp.gate_proj.weight"), &wd = shards.get("layers.1.mlp.down_proj.weight");
  nn::Param &sg = serial.params().get(wg.name), &sd = serial.params().get(wd.name);
  EXPECT_EQ(rel_shard(wg.value, sg.value, Split::rows, tp), 0.0);
  EXPECT_EQ(rel_shard(wd.value, sd.value, Split::cols, tp), 0.0);

  ch03::ColumnParallelLinear col(ops(), tp, wg);
  ch03::RowParallelLinear row(ops(), tp, wd);
  const Tensor x = randn("x", {N, C}), dy = randn("dy", {N, C});
  tp.reset_counts();
  const Tensor& h = col.forward(x);  // [N, F/tp], fed straight into the row-parallel layer
  EXPECT_EQ(counted(tp).calls, 0);
  const Tensor& y = row.forward(h);
  EXPECT_EQ(counted(tp).calls, 1);
  EXPECT_EQ(counted(tp).payload_bytes, ch03::row_forward_cost(N, C).bytes);
  Tensor h_ref = ops().empty({N, F}), y_ref = ops().empty({N, C});
  nn::linear_forward(ops(), h_ref, x, sg.value);
  nn::linear_forward(ops(), y_ref, h_ref, sd.value);
  EXPECT_LT(rel_shard(h, h_ref, Split::cols, tp), 1e-6);
  EXPECT_LT(rel(y, y_ref), 1e-5);

  tp.reset_counts();
  const Tensor& dh = row.backward(dy);
  EXPECT_EQ(counted(tp).calls, 0);
  const Tensor& dx = col.backward(dh);
  EXPECT_EQ(counted(tp).calls, 1);
  EXPECT_EQ(counted(tp).payload_bytes, ch03::column_backward_cost(N, C).bytes);
  Tensor dh_ref = ops().empty({N, F}), dx_ref = ops().empty({N, C});
  nn::linear_backward(ops(), dh_ref, sd.grad, dy, h_ref, sd.value);
  nn::linear_backward(ops(), dx_ref, sg.grad, dh_ref, x, sg.value);
  EXPECT_LT(rel(dx, dx_ref), 1e-5);
  EXPECT_LT(rel_shard(wg.grad, sg.grad, Split::rows, tp), 1e-5);
  EXPECT_LT(rel_shard(wd.grad, sd.grad, Split::cols, tp), 1e-5);
}

TEST_F(TpLayers, SwiGluMlp) {
  Communicator& tp = world();
  const int n = tp.size(), r = tp.rank();
  const ModelConfig cfg = small_config(n);
  nn::Model serial(ops(), cfg);
  nn::SwiGluMlp ref(ops(), nn::swiglu_weights(serial.params(), "layers.0.mlp"));
  ch03::TpParams p(ops(), cfg, r, n);
  ch03::TpMlp mlp(ops(), tp, p.get("layers.0.mlp.gate_proj.weight"), p.get("layers.0.mlp.up_proj.weight"),
                  p.get("layers.0.mlp.down_proj.weight"));
  const Tensor m = randn("m", {cfg.batch, cfg.seq, cfg.dim}), dy = randn("dy", {cfg.batch, cfg.seq, cfg.dim});
  tp.reset_counts();
  EXPECT_LT(rel(mlp.forward(m), ref.forward(m)), 1e-5);
  EXPECT_LT(rel(mlp.backward(dy), ref.backward(dy)), 1e-5);
  EXPECT_EQ(counted(tp).calls, 2);  // one forward (g), one backward (f)
  EXPECT_EQ(counted(tp).payload_bytes, 2 * ch03::block_cost(cfg.batch * cfg.seq, cfg.dim).bytes);
  for (const char* w : {"gate_proj", "up_proj", "down_proj"}) {
    const std::string name = std::string("layers.0.mlp.") + w + ".weight";
    EXPECT_LT(rel_shard(p.get(name).grad, serial.params().get(name).grad, ch03::split_of(name), tp), 1e-5) << name;
  }
}

/// (query heads per rank, kv heads per rank): MHA, GQA 2:1, GQA 4:1 (Hkv < H everywhere but MHA).
class TpAttentionLayouts : public TpTest, public ::testing::WithParamInterface<std::pair<int, int>> {};

TEST_P(TpAttentionLayouts, EqualsSerial) {
  Communicator& tp = world();
  const int n = tp.size(), r = tp.rank();
  const ModelConfig cfg = small_config(n, GetParam().first, GetParam().second);
  nn::Model serial(ops(), cfg);
  nn::AttentionWeights full = nn::attention_weights(serial.params(), "layers.1.self_attn");
  nn::Attention ref(ops(), full, cfg.heads, cfg.kv_heads, cfg.head_dim(), static_cast<float>(cfg.rope_theta));
  ch03::TpParams p(ops(), cfg, r, n);
  const std::string s = "layers.1.self_attn.";
  nn::Param &q = p.get(s + "q_proj.weight"), &k = p.get(s + "k_proj.weight"), &v = p.get(s + "v_proj.weight"),
            &o = p.get(s + "o_proj.weight");
  ch03::TpAttention attn(ops(), tp, cfg, {q.value, k.value, v.value, o.value, q.grad, k.grad, v.grad, o.grad});
  EXPECT_EQ(attn.local_heads(), cfg.heads / n);
  EXPECT_EQ(attn.local_kv_heads(), cfg.kv_heads / n);
  const Tensor a = randn("a", {cfg.batch, cfg.seq, cfg.dim}), dy = randn("dy", {cfg.batch, cfg.seq, cfg.dim});
  const Tensor pos = nn::positions(ops(), 0, cfg.seq);
  tp.reset_counts();
  EXPECT_LT(rel(attn.forward(a, pos), ref.forward(a, pos)), 1e-5);
  EXPECT_LT(rel(attn.backward(dy), ref.backward(dy)), 1e-5);
  EXPECT_EQ(counted(tp).calls, 2);
  EXPECT_LT(rel_shard(q.grad, full.dq, Split::rows, tp), 1e-5);
  EXPECT_LT(rel_shard(k.grad, full.dk, Split::rows, tp), 1e-5);
  EXPECT_LT(rel_shard(v.grad, full.dv, Split::rows, tp), 1e-5);
  EXPECT_LT(rel_shard(o.grad, full.d_o, Split::cols, tp), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Gqa, TpAttentionLayouts,
                         ::testing::Values(std::make_pair(2, 2), std::make_pair(2, 1), std::make_pair(4, 1)));

TEST_F(TpLayers, VocabEmbeddingAndCrossEntropy) {
  Communicator& tp = world();
  const int n = tp.size(), r = tp.rank();
  const ModelConfig cfg = small_config(n);
  const std::int64_t B = cfg.batch, T = cfg.seq, N = B * T, V = cfg.vocab;
  nn::Model serial(ops(), cfg);
  ch03::TpParams p(ops(), cfg, r, n);
  // Tokens and targets on both sides of every shard boundary, and the first and last ids.
  std::vector<std::int32_t> tok(N), tgt(N);
  for (std::int64_t i = 0; i < N; ++i) {
    tok[i] = static_cast<std::int32_t>((i * 7 + V / n - 1 + (i % 2)) % V);
    tgt[i] = static_cast<std::int32_t>(i == 0 ? 0 : (i == 1 ? V - 1 : (i * 5 + V / n * (i % n)) % V));
  }
  const Tensor tokens = Tensor::from_vector(tok, {B, T}), targets = Tensor::from_vector(tgt, {B, T});

  nn::Embedding emb_ref(ops(), serial.params().get("embed_tokens.weight"));
  ch03::VocabParallelEmbedding emb(ops(), tp, p.get("embed_tokens.weight"));
  EXPECT_EQ(emb.range().start, r * V / n);
  tp.reset_counts();
  EXPECT_EQ(rel(emb.forward(tokens), emb_ref.forward(tokens)), 0.0);
  const Tensor dx = randn("dx", {B, T, cfg.dim});
  emb.backward(dx);
  emb_ref.backward(dx);
  EXPECT_EQ(counted(tp).calls, 1);
  EXPECT_LT(rel_shard(p.get("embed_tokens.weight").grad, serial.params().get("embed_tokens.weight").grad, Split::rows,
                      tp), 1e-6);

  nn::LmHead head_ref(ops(), serial.params().get("lm_head.weight"));
  ch03::VocabParallelLmHead head(ops(), tp, p.get("lm_head.weight"));
  const Tensor h = randn("h", {B, T, cfg.dim});
  // Scale up the logits so the softmax is far from uniform (a harder test of the rescaling).
  Tensor h3 = h.clone();
  ops().scale(h3, 30.0f);
  tp.reset_counts();
  head.forward(h3);
  head_ref.forward(h3);
  const double loss = head.loss(targets), loss_ref = head_ref.loss(targets);
  EXPECT_EQ(counted(tp).calls, 3);
  EXPECT_EQ(counted(tp).payload_bytes, ch03::loss_cost(N).bytes);
  EXPECT_NEAR(loss, loss_ref, 1e-6 * std::abs(loss_ref)) << "tp loss " << loss << " serial " << loss_ref;
  // The serial d loss / d logits, for the shard's check.
  Tensor row = ops().empty({N}), dl_ref = ops().empty({B, T, V});
  ops().cross_entropy(row, dl_ref, head_ref.logits(), targets, 1.0f / static_cast<float>(N));
  EXPECT_LT(rel_shard(head.dlogits(), dl_ref, Split::cols, tp), 1e-6);
  EXPECT_LT(rel(head.backward(), head_ref.backward()), 1e-5);
  EXPECT_EQ(counted(tp).calls, 4);
  EXPECT_LT(rel_shard(p.get("lm_head.weight").grad, serial.params().get("lm_head.weight").grad, Split::rows, tp), 1e-5);
}

TEST_F(TpLayers, ArgmaxAcrossShardsBreaksTiesToTheLowerId) {
  Communicator& tp = world();
  const int n = tp.size(), r = tp.rank();
  const std::int64_t vl = 3;
  // Row 0: every logit equal -> id 0. Row 1: the maximum 5 on every rank at local column 2 -> id 2.
  // Row 2: a unique maximum on the last rank, local column 1.
  std::vector<float> l = {1, 1, 1, 0, 0, 5, 0, r == n - 1 ? 9.0f : 0.0f, 0};
  const Tensor logits = Tensor::from_vector(l, {3, 1, vl});
  tp.reset_counts();
  const std::vector<std::int32_t> ids = ch03::vocab_parallel_argmax(tp, ops(), logits, 0, r * vl);
  EXPECT_EQ(ids, (std::vector<std::int32_t>{0, 2, static_cast<std::int32_t>((n - 1) * vl + 1)}));
  EXPECT_EQ(counted(tp, "all_gather").calls, 1);
  EXPECT_EQ(counted(tp, "all_gather").payload_bytes, ch03::generation_all_gather_cost(3, 1).bytes);
}

}  // namespace
}  // namespace fivefold::test
