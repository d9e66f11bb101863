// SPDX-License-Identifier: MIT
/// @file check.hpp
/// @brief The checks the chapter 03 exercises run: your routine (or the solution) on every rank of
/// a TP group made of the whole world, against the serial computation on the full tensors.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/communicator.hpp"
#include "backends/ops.hpp"

namespace fivefold::ch03 {

/// Row-parallel forward: y [N, out] = sum over ranks of x_r [N, in/tp] W_r^T (W_r [out, in/tp]).
using RowForwardFn = void (*)(Communicator& tp, Ops& ops, Tensor& y, const Tensor& x_r, const Tensor& w_r);
/// Row-parallel backward: dx_r [N, in/tp] = dy W_r (overwritten); dw_r += dy^T x_r.
using RowBackwardFn = void (*)(Communicator& tp, Ops& ops, Tensor& dx_r, Tensor& dw_r, const Tensor& dy,
                               const Tensor& x_r, const Tensor& w_r);
/// Vocab-parallel mean cross-entropy: @p logits_r [N, V/tp] (host) are this rank's columns
/// v0 .. v0+V/tp-1 of the logits, @p targets the N target ids (0..V-1). Returns the mean loss
/// over the N rows and writes this rank's d loss / d logits into @p dlogits_r [N, V/tp] (host).
using VocabLossFn = double (*)(Communicator& tp, Ops& ops, const Tensor& logits_r,
                               const std::vector<std::int32_t>& targets, std::int64_t v0, Tensor& dlogits_r);

/// Runs @p fwd and @p bwd under MPI on random data (the same serial problem on every rank) and
/// compares y, dx_r and dW_r with the serial result; prints PASSED or what is wrong on rank 0.
int check_row_parallel(int argc, char** argv, RowForwardFn fwd, RowBackwardFn bwd);
/// Runs @p fn under MPI on random logits (some rows with targets on every rank, at the shard
/// boundaries) and compares the loss and dlogits_r with the serial cross-entropy.
int check_vocab_loss(int argc, char** argv, VocabLossFn fn);

}  // namespace fivefold::ch03
