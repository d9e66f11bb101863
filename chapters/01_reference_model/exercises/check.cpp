// SPDX-License-Identifier: MIT
// The exercise checks (see check.hpp). One rank; the verdict (and, asked with --hint 1|2, the
// graded hints) printed on rank 0.
#include "chapters/01_reference_model/exercises/check.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "chapters/01_reference_model/rmsnorm_by_hand.hpp"
#include "chapters/exercise.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"
#include "common/rng.hpp"
#include "common/summary.hpp"

namespace fivefold::ch01 {

namespace {

/// sum_ij dy[i, j] * rmsnorm(x)[i, j], in double (the function whose gradient dx is).
double objective(const std::vector<double>& x, const std::vector<float>& w, const std::vector<float>& dy,
                 std::int64_t n, std::int64_t c, double eps) {
  double total = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    double ss = 0.0;
    for (std::int64_t j = 0; j < c; ++j) ss += x[i * c + j] * x[i * c + j];
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(c) + eps);
    for (std::int64_t j = 0; j < c; ++j) total += dy[i * c + j] * x[i * c + j] * r * w[j];
  }
  return total;
}

const char* const kHintNorm1 =
    "the idea and the API\n"
    "  y_j = x_j r w_j, and r = (mean_k x_k^2 + eps)^(-1/2) depends on EVERY x_k of the row: so\n"
    "  dx_k collects a direct term (through x_k itself) and a term through r from every y_j.\n"
    "  Differentiate r with respect to x_k first; dw_j sums over the rows. Plain loops over\n"
    "  std::vector<float> (rows of c values) are enough.";
const char* const kHintNorm2 =
    "the rule\n"
    "  with xhat = x r and g = dy * w (element by element): dx = r (g - xhat mean_j(g_j xhat_j));\n"
    "  dw_j += sum over rows of dy_j xhat_j.";
const char* const kHintCache1 =
    "the idea and the API\n"
    "  The first call is the whole prompt, every later call one token at position start. A token's\n"
    "  keys and values never change once computed: keep them in the cache at the slot of their\n"
    "  position, and let the new queries attend over everything cached so far (the causal mask\n"
    "  follows the positions). RoPE needs the absolute positions.\n"
    "  API: nn::positions, Ops::rope, Ops::attention_forward (backends/ops.hpp), nn::KvCache\n"
    "  (nn/attention.hpp), Tensor::flat / copy_from (common/tensor.hpp).";
const char* const kHintCache2 =
    "the rule\n"
    "  pos = positions(start, T); q, k = rope(.., pos); copy k, v of sequence b into cache slots\n"
    "  start .. start+T-1 of sequence b; attention_forward(o, lse, q, cache.k, cache.v, pos, cache.k_pos).";

int verdict(const char* what, const std::string& problem) {
  std::printf("exercise %s: %s\n", what, problem.empty() ? "PASSED" : "FAILED");
  if (!problem.empty())
    std::printf("  %s\n  hint: run again with --hint 1 (the idea and the API), then --hint 2 (the rule)\n",
                problem.c_str());
  return problem.empty() ? 0 : 1;
}

std::string describe(const char* name, const CheckResult& r) {
  return r.passed ? std::string() : std::string(name) + ": relative error " + std::to_string(r.max_rel_err) +
                                        " (allowed " + std::to_string(r.tolerance) + ")";
}

}  // namespace

int check_rmsnorm_backward(int argc, char** argv, RmsNormBackwardFn fn) {
  return run_exercise(argc, argv, kHintNorm1, kHintNorm2, [fn](Communicator&, Ops& ops) {
    const std::int64_t n = 5, c = 16;
    const float eps = 1e-5f;
    const std::vector<float> x = rng::draw(7, "ex1.x", {n, c}, rng::Dist::normal, 0.0f, 1.0f).to_vector();
    const std::vector<float> w = rng::draw(7, "ex1.w", {c}, rng::Dist::normal, 1.0f, 0.2f).to_vector();
    const std::vector<float> dy = rng::draw(7, "ex1.dy", {n, c}, rng::Dist::normal, 0.0f, 1.0f).to_vector();
    std::vector<float> y, rstd, dx, dw(static_cast<std::size_t>(c), 0.0f);
    rmsnorm_forward_by_hand(x, w, n, c, eps, y, rstd);
    fn(x, w, rstd, dy, n, c, dx, dw);
    if (dx.size() != static_cast<std::size_t>(n * c) || dw.size() != static_cast<std::size_t>(c))
      return verdict("rmsnorm backward", "dx has " + std::to_string(dx.size()) + " elements (expected N*C = " +
                                             std::to_string(n * c) + ") and dw " + std::to_string(dw.size()) +
                                             " (expected C = " + std::to_string(c) + ")");
    // Central differences in double: d/dx_k of sum(dy * y), and d/dw_j = sum_i dy_ij xhat_ij.
    std::vector<double> xd(x.begin(), x.end());
    std::vector<float> fd_dx(x.size()), ref_dw(static_cast<std::size_t>(c), 0.0f);
    const double h = 1e-6;
    for (std::size_t k = 0; k < xd.size(); ++k) {
      const double keep = xd[k];
      xd[k] = keep + h;
      const double up = objective(xd, w, dy, n, c, eps);
      xd[k] = keep - h;
      const double down = objective(xd, w, dy, n, c, eps);
      xd[k] = keep;
      fd_dx[k] = static_cast<float>((up - down) / (2 * h));
    }
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < c; ++j) ref_dw[j] += dy[i * c + j] * x[i * c + j] * rstd[i];
    const CheckResult rdx = compare("dx", Tensor::from_vector(dx, {n, c}), Tensor::from_vector(fd_dx, {n, c}), 1e-4);
    const CheckResult rdw = compare("dw", Tensor::from_vector(dw, {c}), Tensor::from_vector(ref_dw, {c}), 1e-5);
    // And the backend's own backward.
    Tensor odx = ops.empty({n, c}), odw = ops.zeros({c});
    ops.rmsnorm_backward(odx, odw, ops.upload(Tensor::from_vector(dy, {n, c})), ops.upload(Tensor::from_vector(x, {n, c})),
                         ops.upload(Tensor::from_vector(w, {c})), ops.upload(Tensor::from_vector(rstd, {n})));
    const CheckResult ops_dx = compare("dx vs Ops", Tensor::from_vector(dx, {n, c}), odx, 1e-5);
    std::string problem = describe("dx vs finite differences", rdx);
    if (problem.empty()) problem = describe("dw vs sum_i dy * xhat", rdw);
    if (problem.empty()) problem = describe("dx vs Ops::rmsnorm_backward", ops_dx);
    return verdict("rmsnorm backward", problem);
  });
}

int check_kv_cache(int argc, char** argv, CacheAttendFn fn) {
  return run_exercise(argc, argv, kHintCache1, kHintCache2, [fn](Communicator&, Ops& ops) {
    std::string problem;
    for (const bool moe : {false, true}) {
      ModelConfig cfg;
      cfg.heads = 4;
      cfg.kv_heads = 2;
      if (moe) {
        cfg.experts = 4;
        cfg.topk = 2;
      }
      nn::ParamRegistry reg(ops, cfg.seed);
      reg.add_model(cfg);
      const nn::Batch batch = nn::synthetic_batch(cfg.seed, cfg.vocab, 2, 3);  // prompts [2, 3]
      KvGenerator gen(ops, reg, cfg, fn);
      const Tensor cached = gen.generate(batch.inputs, 6);
      TracedModel full_model(ops, reg, cfg);
      Tensor full_logits;
      const Tensor full = generate_full(full_model, batch.inputs, 6, &full_logits);
      const std::string which = moe ? "MoE model" : "dense GQA model";
      if (problem.empty())
        problem = describe((which + ": logits of each new token vs a full forward").c_str(),
                           compare("", gen.step_logits(), full_logits, 1e-5));
      if (problem.empty())
        problem = describe((which + ": generated tokens vs a full forward").c_str(), compare("", cached, full, 0.0));
    }
    return verdict("KV cache", problem);
  });
}

}  // namespace fivefold::ch01
