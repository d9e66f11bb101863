// SPDX-License-Identifier: MIT
// Layer-by-layer gradient checks: each nn/ layer's fp32 forward against the double
// reference (tol 1e-5) and its hand-written backward against central finite differences of
// the double reference (tol 1e-4; see test_model_grad.cpp for why these tolerances), with the
// scalar loss sum(y * R) for a fixed random R (so dy = R), plus the aux loss for MoE.
#include <gtest/gtest.h>

#include "backends/cpu/eigen_ops.hpp"
#include "nn/attention.hpp"
#include "nn/layers.hpp"
#include "nn/moe.hpp"
#include "tests/nn/nn_test_util.hpp"

namespace fivefold {
namespace {

using ref::IVec;
using ref::Vec;
using testing_nn::expect_rel;
using testing_nn::random_tensor;

constexpr std::int64_t B = 2, T = 5, C = 8, V = 11, F = 12, H = 2, Hkv = 1, hd = 4;

double dot(const Vec& a, const Vec& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

TEST(LayerGrad, Embedding) {
  EigenOps ops;
  nn::ParamRegistry reg(ops, 1);
  nn::Param& table = reg.add("embed_tokens.weight", {V, C});
  testing_nn::randomize(reg);
  const Tensor tokens = Tensor::from_vector(std::vector<std::int32_t>{1, 4, 1, 0, 10, 4, 4, 2, 9, 1}, {B, T});
  const Tensor r = random_tensor("R", {B, T, C});
  nn::Embedding emb(ops, table);
  const Tensor& y = emb.forward(tokens);
  emb.backward(r);
  Vec W = ref::to_double(table.value);
  const Vec R = ref::to_double(r);
  const IVec tk = testing_nn::to_ints(tokens);
  auto fwd = [&] {
    Vec out(B * T * C);
    for (std::int64_t n = 0; n < B * T; ++n)
      for (std::int64_t c = 0; c < C; ++c) out[n * C + c] = W[tk[n] * C + c];
    return out;
  };
  expect_rel("embedding y", ref::to_double(y), fwd(), 1e-5);
  expect_rel("embedding d table (repeated tokens summed)", ref::to_double(table.grad),
             ref::fd_grad(W, [&] { return dot(fwd(), R); }), 1e-4);
}

TEST(LayerGrad, RmsNorm) {
  EigenOps ops;
  nn::ParamRegistry reg(ops, 1);
  nn::Param& w = reg.add("input_layernorm.weight", {C});
  testing_nn::randomize(reg);
  const Tensor x = random_tensor("x", {B, T, C}, 2.0f), r = random_tensor("R", {B, T, C});
  nn::RmsNorm norm(ops, w, 1e-5f);
  const Tensor y = norm.forward(x).clone();
  const Tensor dx = norm.backward(r).clone();
  Vec X = ref::to_double(x), W = ref::to_double(w.value);
  const Vec R = ref::to_double(r);
  auto loss = [&] { return dot(ref::rmsnorm(X, C, W, 1e-5), R); };
  expect_rel("rmsnorm y", ref::to_double(y), ref::rmsnorm(X, C, W, 1e-5), 1e-5);
  expect_rel("rmsnorm dx", ref::to_double(dx), ref::fd_grad(X, loss), 1e-4);
  expect_rel("rmsnorm dw", ref::to_double(w.grad), ref::fd_grad(W, loss), 1e-4);
}

TEST(LayerGrad, SwiGluMlp) {
  EigenOps ops;
  nn::ParamRegistry reg(ops, 1);
  nn::Param& g = reg.add("mlp.gate_proj.weight", {F, C});
  nn::Param& u = reg.add("mlp.up_proj.weight", {F, C});
  nn::Param& d = reg.add("mlp.down_proj.weight", {C, F});
  testing_nn::randomize(reg, 0.5f);
  const Tensor x = random_tensor("x", {B, T, C}), r = random_tensor("R", {B, T, C});
  nn::SwiGluMlp mlp(ops, nn::swiglu_weights(reg, "mlp"));
  const Tensor y = mlp.forward(x).clone();
  const Tensor dx = mlp.backward(r).clone();
  Vec X = ref::to_double(x), G = ref::to_double(g.value), U = ref::to_double(u.value), D = ref::to_double(d.value);
  const Vec R = ref::to_double(r);
  auto fwd = [&] { return ref::swiglu_mlp(X, B * T, C, F, G, U, D); };
  auto loss = [&] { return dot(fwd(), R); };
  expect_rel("swiglu mlp y", ref::to_double(y), fwd(), 1e-5);
  expect_rel("swiglu mlp dx", ref::to_double(dx), ref::fd_grad(X, loss), 1e-4);
  expect_rel("swiglu mlp d gate", ref::to_double(g.grad), ref::fd_grad(G, loss), 1e-4);
  expect_rel("swiglu mlp d up", ref::to_double(u.grad), ref::fd_grad(U, loss), 1e-4);
  expect_rel("swiglu mlp d down", ref::to_double(d.grad), ref::fd_grad(D, loss), 1e-4);
}

TEST(LayerGrad, AttentionGqaRopeWithGlobalPositions) {
  EigenOps ops;
  nn::ParamRegistry reg(ops, 1);
  nn::Param& q = reg.add("attn.q_proj.weight", {H * hd, C});
  nn::Param& k = reg.add("attn.k_proj.weight", {Hkv * hd, C});
  nn::Param& v = reg.add("attn.v_proj.weight", {Hkv * hd, C});
  nn::Param& o = reg.add("attn.o_proj.weight", {C, H * hd});
  testing_nn::randomize(reg, 0.5f);
  const Tensor a = random_tensor("a", {B, T, C}), r = random_tensor("R", {B, T, C});
  nn::Attention attn(ops, nn::attention_weights(reg, "attn"), H, Hkv, hd, 10000.0f);
  const Tensor pos = nn::positions(ops, 4, T);  // a chunk starting at global position 4
  const Tensor y = attn.forward(a, pos).clone();
  const Tensor da = attn.backward(r).clone();
  Vec A = ref::to_double(a), Q = ref::to_double(q.value), K = ref::to_double(k.value), Vw = ref::to_double(v.value),
      O = ref::to_double(o.value);
  const Vec R = ref::to_double(r);
  const IVec p{4, 5, 6, 7, 8};
  auto fwd = [&] {
    Vec qq = ref::linear(A, B * T, C, Q, H * hd), kk = ref::linear(A, B * T, C, K, Hkv * hd);
    const Vec vv = ref::linear(A, B * T, C, Vw, Hkv * hd);
    ref::rope(qq, B, T, H, hd, p, 10000.0);
    ref::rope(kk, B, T, Hkv, hd, p, 10000.0);
    return ref::linear(ref::attention(qq, kk, vv, B, T, T, H, Hkv, hd, p, p), B * T, H * hd, O, C);
  };
  auto loss = [&] { return dot(fwd(), R); };
  expect_rel("attention block y", ref::to_double(y), fwd(), 1e-5);
  expect_rel("attention block da", ref::to_double(da), ref::fd_grad(A, loss), 1e-4);
  expect_rel("attention block d q_proj", ref::to_double(q.grad), ref::fd_grad(Q, loss), 1e-4);
  expect_rel("attention block d k_proj", ref::to_double(k.grad), ref::fd_grad(K, loss), 1e-4);
  expect_rel("attention block d v_proj", ref::to_double(v.grad), ref::fd_grad(Vw, loss), 1e-4);
  expect_rel("attention block d o_proj", ref::to_double(o.grad), ref::fd_grad(O, loss), 1e-4);
}

TEST(LayerGrad, MoeWithCapacityDropsAndAuxLoss) {
  EigenOps ops;
  const int E = 4, k = 2;
  const double cf = 1.0, aux_coef = 0.1;
  nn::ParamRegistry reg(ops, 1);
  nn::Param& router = reg.add("moe.router.weight", {E, C});
  for (int e = 0; e < E; ++e) {
    const std::string p = "moe.experts." + std::to_string(e);
    reg.add(p + ".gate_proj.weight", {F, C});
    reg.add(p + ".up_proj.weight", {F, C});
    reg.add(p + ".down_proj.weight", {C, F});
  }
  testing_nn::randomize(reg, 0.5f, 0.7f);
  const Tensor x = random_tensor("x", {B, T, C}), r = random_tensor("R", {B, T, C});
  nn::MoeLayer moe(ops, reg, "moe", E, k, cf, aux_coef);
  const Tensor y = moe.forward(x).clone();
  const double aux = moe.aux_loss();
  const Tensor dx = moe.backward(r).clone();
  const nn::Routing& rt = moe.routing();
  EXPECT_GT(rt.dropped, 0) << "the case should drop assignments over capacity";
  for (int e = 0; e < E; ++e) EXPECT_FALSE(rt.expert_tokens[e].empty()) << "expert " << e << " idle";
  Vec X = ref::to_double(x);
  const Vec R = ref::to_double(r);
  std::map<std::string, Vec> w;
  for (nn::Param& p : reg.all()) w[p.name] = ref::to_double(p.value);
  auto run = [&] {
    std::vector<std::array<Vec, 3>> ex;
    for (int e = 0; e < E; ++e) {
      const std::string p = "moe.experts." + std::to_string(e);
      ex.push_back({w[p + ".gate_proj.weight"], w[p + ".up_proj.weight"], w[p + ".down_proj.weight"]});
    }
    return ref::moe(X, B, T, C, F, E, k, cf, aux_coef, w["moe.router.weight"], ex);
  };
  const ref::MoeOut base = run();
  EXPECT_EQ(IVec(rt.choice.begin(), rt.choice.end()), base.choice);
  EXPECT_EQ(IVec(rt.kept.begin(), rt.kept.end()), base.kept);
  expect_rel("moe y", ref::to_double(y), base.y, 1e-5);
  expect_rel("moe aux loss", {aux}, {base.aux}, 1e-5);
  bool flipped = false;
  auto loss = [&] {
    const ref::MoeOut m = run();
    if (m.choice != base.choice || m.kept != base.kept) flipped = true;
    return dot(m.y, R) + m.aux;
  };
  expect_rel("moe dx", ref::to_double(dx), ref::fd_grad(X, loss), 1e-4);
  expect_rel("moe d router", ref::to_double(router.grad), ref::fd_grad(w["moe.router.weight"], loss), 1e-4);
  for (nn::Param& p : reg.all())
    if (p.name != "moe.router.weight") expect_rel("moe d " + p.name, ref::to_double(p.grad), ref::fd_grad(w[p.name], loss), 1e-4);
  EXPECT_FALSE(flipped) << "a perturbation changed the routing: finite differences invalid for this seed";
}

TEST(LayerGrad, LmHeadCrossEntropy) {
  EigenOps ops;
  nn::ParamRegistry reg(ops, 1);
  nn::Param& w = reg.add("lm_head.weight", {V, C});
  testing_nn::randomize(reg, 0.5f);
  const Tensor h = random_tensor("h", {B, T, C});
  const Tensor tg = testing_nn::random_ints("targets", {B, T}, V);
  nn::LmHead head(ops, w);
  const Tensor logits = head.forward(h).clone();
  const double loss = head.loss(tg);
  const Tensor dh = head.backward().clone();
  Vec Hh = ref::to_double(h), W = ref::to_double(w.value);
  const IVec t = testing_nn::to_ints(tg);
  auto f = [&] { return ref::cross_entropy(ref::linear(Hh, B * T, C, W, V), B * T, V, t); };
  expect_rel("lm head logits", ref::to_double(logits), ref::linear(Hh, B * T, C, W, V), 1e-5);
  expect_rel("mean cross-entropy", {loss}, {f()}, 1e-5);
  expect_rel("lm head dh", ref::to_double(dh), ref::fd_grad(Hh, f), 1e-4);
  expect_rel("lm head dW", ref::to_double(w.grad), ref::fd_grad(W, f), 1e-4);
}

}  // namespace
}  // namespace fivefold
