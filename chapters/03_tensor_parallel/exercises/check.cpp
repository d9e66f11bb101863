// SPDX-License-Identifier: MIT
// The exercise checks (see check.hpp): the world is one TP group; the serial reference is the
// same computation on the full tensors, done on every rank. Rank 0 prints the verdict.
#include "chapters/03_tensor_parallel/exercises/check.hpp"

#include <cmath>
#include <string>

#include "chapters/03_tensor_parallel/tp_gather.hpp"
#include "chapters/exercise.hpp"
#include "nn/layers.hpp"
#include "common/rng.hpp"
#include "common/summary.hpp"

namespace fivefold::ch03 {

namespace {

Tensor randn(const std::string& name, const Shape& shape, float scale) {
  return rng::draw(3, "ch03.exercise." + name, shape, rng::Dist::normal, 0.0f, scale);
}

/// "" when @p ours matches @p ref within @p tol, else a line saying what differs.
std::string mismatch(const char* what, const Tensor& ours, const Tensor& ref, double tol) {
  const CheckResult c = compare(what, ours, ref, tol);
  return c.passed ? std::string() : std::string(what) + ": relative error " + std::to_string(c.max_rel_err) +
                                        " (tolerance " + std::to_string(tol) + ")";
}

const char* const kHintRow1 =
    "the idea and the API\n"
    "  Rank r multiplies only its in/tp inputs by its in/tp columns of W: x_r W_r^T is a PARTIAL sum\n"
    "  of the full y. Which collective turns partial sums into the whole on every rank? In the\n"
    "  backward, look at what dx_r and dW_r depend on: does either need another rank's data?\n"
    "  API: nn::linear_forward / linear_backward_input / linear_backward_weight (nn/layers.hpp),\n"
    "  Communicator::all_reduce (backends/communicator.hpp).";
const char* const kHintRow2 =
    "the rule\n"
    "  forward: y = x_r W_r^T, then all_reduce(y). backward: dx_r = dy W_r and dW_r = dy^T x_r,\n"
    "  no communication (dy is already whole on every rank).";
const char* const kHintVocab1 =
    "the idea and the API\n"
    "  log sum_v exp(l_v) over ALL V columns can be assembled from per-rank pieces if every rank\n"
    "  first agrees on one stabiliser (a maximum) and then on one sum of exponentials; the target\n"
    "  logit lives on exactly one rank. The gradient then needs no more communication.\n"
    "  API: Communicator::all_reduce(buf, ReduceOp::max | ReduceOp::sum) (backends/communicator.hpp);\n"
    "  host loops over Tensor::to_vector() and Tensor::from_vector (common/tensor.hpp).";
const char* const kHintVocab2 =
    "the rule\n"
    "  per row: M = max over ranks of the local row max; S = sum over ranks of sum_local exp(l - M);\n"
    "  z = sum over ranks of (l_target if owned else 0); loss = M + log S - z.\n"
    "  d l_v = (exp(l_v - M) / S - [v == target]) / N.";

}  // namespace

int check_row_parallel(int argc, char** argv, RowForwardFn fwd, RowBackwardFn bwd) {
  return run_exercise(argc, argv, kHintRow1, kHintRow2, [fwd, bwd](Communicator& tp, Ops& ops) {
    const int n = tp.size(), r = tp.rank();
    const std::int64_t N = 6, in = 10 * n, out = 7;
    const Tensor x = randn("x", {N, in}, 1.0f), w = randn("w", {out, in}, 0.5f), dy = randn("dy", {N, out}, 1.0f);
    Tensor y_ref = ops.empty({N, out}), dx_ref = ops.empty({N, in}), dw_ref = ops.zeros({out, in});
    nn::linear_forward(ops, y_ref, x, w);
    nn::linear_backward(ops, dx_ref, dw_ref, dy, x, w);

    const Tensor x_r = block_of(x, Split::cols, r, n), w_r = block_of(w, Split::cols, r, n);  // this rank's slices
    Tensor y = ops.zeros({N, out}), dx_r = ops.zeros({N, in / n}), dw_r = ops.zeros({out, in / n});
    tp.reset_counts();
    fwd(tp, ops, y, x_r, w_r);
    const OpCount f = tp.counts().count("all_reduce") ? tp.counts().at("all_reduce") : OpCount{};
    tp.reset_counts();
    bwd(tp, ops, dx_r, dw_r, dy, x_r, w_r);
    const OpCount bw = tp.counts().count("all_reduce") ? tp.counts().at("all_reduce") : OpCount{};
    std::string bad = mismatch("forward y", y, y_ref, 1e-5);
    if (bad.empty()) bad = mismatch("backward dx_r", dx_r, block_of(dx_ref, Split::cols, r, n), 1e-5);
    if (bad.empty()) bad = mismatch("backward dW_r", dw_r, block_of(dw_ref, Split::cols, r, n), 1e-5);
    if (bad.empty() && (f.calls != 1 || bw.calls != 0))
      bad = "the values are right, but the forward made " + std::to_string(f.calls) + " all_reduce call(s) and the "
            "backward " + std::to_string(bw.calls) + "; the layer needs 1 and 0";
    return verdict(tp, "row-parallel linear", bad.empty() ? bad : "rank " + std::to_string(r) + ": " + bad);
  });
}

int check_vocab_loss(int argc, char** argv, VocabLossFn fn) {
  return run_exercise(argc, argv, kHintVocab1, kHintVocab2, [fn](Communicator& tp, Ops& ops) {
    const int n = tp.size(), r = tp.rank();
    const std::int64_t N = 12, V = 5 * n, vl = V / n;
    Tensor logits = randn("logits", {N, V}, 4.0f);  // peaked rows: the rescaling matters
    std::vector<std::int32_t> targets(N);
    for (std::int64_t i = 0; i < N; ++i)  // every rank owns some targets, including shard edges
      targets[i] = static_cast<std::int32_t>((i % n) * vl + (i % 2 ? vl - 1 : 0) + (i % 3 == 2 ? 1 : 0)) % V;
    Tensor row = ops.empty({N}), dl_ref = ops.empty({N, V});
    ops.cross_entropy(row, dl_ref, logits, Tensor::from_vector(targets, {N}), 1.0f / static_cast<float>(N));
    double ref = 0;
    for (float v : row.to_vector()) ref += v;
    ref /= static_cast<double>(N);

    const Tensor logits_r = block_of(logits, Split::cols, r, n);
    Tensor dl_r = ops.zeros({N, vl});
    tp.reset_counts();
    const double loss = fn(tp, ops, logits_r, targets, r * vl, dl_r);
    std::string bad;
    if (!(std::fabs(loss - ref) <= 1e-5 * std::fabs(ref)))
      bad = "loss " + std::to_string(loss) + ", expected " + std::to_string(ref);
    if (bad.empty()) bad = mismatch("dlogits_r", dl_r, block_of(dl_ref, Split::cols, r, n), 1e-5);
    const OpCount c = tp.counts().count("all_reduce") ? tp.counts().at("all_reduce") : OpCount{};
    if (bad.empty() && c.calls != 3)
      bad = "the values are right, but " + std::to_string(c.calls) + " all_reduce call(s) were made; the formula "
            "needs 3 of N floats each";
    return verdict(tp, "vocab-parallel cross-entropy", bad.empty() ? bad : "rank " + std::to_string(r) + ": " + bad);
  });
}

}  // namespace fivefold::ch03
