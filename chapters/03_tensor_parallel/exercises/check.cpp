// SPDX-License-Identifier: MIT
// The exercise checks (see check.hpp): the world is one TP group; the serial reference is the
// same computation on the full tensors, done on every rank. Rank 0 prints the verdict.
#include "chapters/03_tensor_parallel/exercises/check.hpp"

#include <cmath>
#include <string>

#include "backends/backend.hpp"
#include "backends/runtime.hpp"
#include "chapters/03_tensor_parallel/tp_gather.hpp"
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

}  // namespace

int check_row_parallel(int argc, char** argv, RowForwardFn fwd, RowBackwardFn bwd) {
  return run_mpi_main(argc, argv, [fwd, bwd](int, char**) {
    Backend b = make_backend("cpu");
    Communicator& tp = *b.world;
    Ops& ops = *b.ops;
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
      bad = "expected exactly one all_reduce in the forward and none in the backward; counted " +
            std::to_string(f.calls) + " and " + std::to_string(bw.calls);
    return exercise_verdict(tp, "row-parallel linear", bad,
                            "each rank's x_r W_r^T is a partial sum over its in/tp inputs: which operator sums them? "
                            "And which of dx_r, dW_r needs anything but this rank's own pieces? (README, 'The idea')");
  });
}

int check_vocab_loss(int argc, char** argv, VocabLossFn fn) {
  return run_mpi_main(argc, argv, [fn](int, char**) {
    Backend b = make_backend("cpu");
    Communicator& tp = *b.world;
    Ops& ops = *b.ops;
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
      bad = "expected 3 all_reduce calls of N floats (max, sum of exponentials, target logit), counted " +
            std::to_string(c.calls);
    return exercise_verdict(
        tp, "vocab-parallel cross-entropy", bad,
        "loss = log sum_v exp(l_v) - l_target over ALL V columns: combine the ranks' row maxima (max), "
        "their sums of exp(l - M) (sum) and the target logit (sum, owner only). (README, step 5)");
  });
}

}  // namespace fivefold::ch03
