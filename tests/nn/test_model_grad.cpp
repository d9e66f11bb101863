// SPDX-License-Identifier: MIT
// Whole-model gradient checks: our fp32 forward and hand-written backward against an
// independent double-precision reference (tests/nn/ref_model.hpp) differentiated by central
// finite differences, for a dense GQA model, a MoE model with capacity drops and aux loss, and
// an MHA model with MoE every other layer.
//
// Tolerances (relative L2 per tensor): forward 1e-5, gradients 1e-4. fp32 rounding of these
// short sums gives ~1e-7..1e-6; central differences in double with h = 1e-5 are accurate to
// ~1e-9 (truncation h^2 f''' plus rounding 1e-16/h); so 1e-5 / 1e-4 leave a 10-100x margin
// while any wrong term (a missing factor, a dropped path) gives errors of 1e-2 or more.
#include <gtest/gtest.h>

#include "backends/cpu/eigen_ops.hpp"
#include "nn/model.hpp"
#include "tests/nn/nn_test_util.hpp"
#include "tests/nn/ref_model.hpp"

namespace fivefold {
namespace {

using testing_nn::expect_rel;

using testing_nn::tiny_model;

// @p weight_seed picks test weights under which every expert gets tokens and the smallest gap
// between the k-th and (k+1)-th router probability (>= 1e-3) dwarfs a 1e-5 perturbation.
void check_model(const ModelConfig& cfg, bool expect_drops, std::uint64_t weight_seed = 11) {
  EigenOps ops;
  nn::Model model(ops, cfg);
  testing_nn::randomize(model.params(), 0.3f, 1.0f, weight_seed);
  const Tensor tokens = testing_nn::random_ints("tokens", {cfg.batch, cfg.seq}, cfg.vocab);
  const Tensor targets = testing_nn::random_ints("targets", {cfg.batch, cfg.seq}, cfg.vocab);
  model.zero_grad();
  const double loss = model.forward(tokens, targets);
  model.backward();

  ref::RefModel rm(cfg, model.params());
  const ref::IVec tk = testing_nn::to_ints(tokens), tg = testing_nn::to_ints(targets);
  const ref::RefModel::Out base = rm.forward(tk, tg);
  expect_rel("forward logits", ref::to_double(model.logits()), base.logits, 1e-5);
  expect_rel("forward loss", {loss}, {base.loss}, 1e-5);
  if (cfg.experts > 0) {
    expect_rel("aux loss", {model.aux_loss()}, {base.aux}, 1e-5);
    EXPECT_GT(base.aux, 0.0);
    ref::IVec ours;  // our routing decisions, in the reference's order
    std::int64_t dropped = 0;
    for (nn::DecoderLayer& layer : model.layers()) {
      if (!layer.moe()) continue;
      const nn::Routing& r = layer.moe()->routing();
      ours.insert(ours.end(), r.choice.begin(), r.choice.end());
      ours.insert(ours.end(), r.kept.begin(), r.kept.end());
      dropped += r.dropped;
      for (int e = 0; e < r.experts; ++e) {
        std::printf("  expert %d: %zu tokens\n", e, r.expert_tokens[e].size());
        EXPECT_FALSE(r.expert_tokens[e].empty()) << "expert " << e << " got no token: its gradient is untested";
      }
    }
    EXPECT_EQ(ours, base.routing) << "top-k choices or capacity drops differ from the reference";
    if (expect_drops) {
      EXPECT_GT(dropped, 0) << "this case is meant to exercise capacity drops";
    }
  }
  bool flipped = false;
  for (nn::Param& p : model.params().all()) {
    ref::Vec& x = rm.p.at(p.name);
    const ref::Vec fd = ref::fd_grad(x, [&] {
      const ref::RefModel::Out o = rm.forward(tk, tg);
      if (o.routing != base.routing) flipped = true;  // a perturbation must not change routing
      return o.loss;
    });
    expect_rel("grad " + p.name, ref::to_double(p.grad), fd, 1e-4);
  }
  EXPECT_FALSE(flipped) << "a finite-difference perturbation flipped a top-k choice or a capacity drop; "
                           "the finite differences are invalid for this seed";
}

TEST(ModelGrad, DenseGqa) { check_model(tiny_model(), false); }

TEST(ModelGrad, MoeCapacityAndAux) {
  ModelConfig c = tiny_model();
  c.experts = 4;
  c.topk = 2;
  c.capacity_factor = 1.0;  // capacity ceil(1*2*5/4) = 3 per sequence: some assignments drop
  c.aux_coef = 0.1;
  check_model(c, true, 14);
}

TEST(ModelGrad, MhaMoeEveryOtherLayerDropless) {
  ModelConfig c = tiny_model();
  c.kv_heads = 2;
  c.experts = 3;
  c.topk = 1;
  c.moe_every = 2;  // layer 1 only
  c.aux_coef = 0.05;
  check_model(c, false, 13);
}

}  // namespace
}  // namespace fivefold
