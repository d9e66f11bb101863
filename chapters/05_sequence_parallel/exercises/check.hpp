// SPDX-License-Identifier: MIT
/// @file check.hpp
/// @brief The checks the chapter 05 exercises run on a routine (yours, or the solution): the
/// log-sum-exp merge of partial attentions (against one attention over every key, rows that see
/// no key included) and the zigzag index map (every position once, two chunks per rank, the same
/// causal work on every rank). Each check also answers --hint 1 / --hint 2.
#pragma once

#include <cstdint>
#include <vector>

#include "chapters/exercise.hpp"

namespace fivefold::ch05 {

/// Exercise 1: merges the partial attention (@p out_b, @p lse_b) of the same queries over another
/// set of keys into (@p out, @p lse), in place. Rows of @p d values: out[i*d .. i*d+d), lse[i].
using LseMergeFn = void (*)(std::vector<double>& out, std::vector<double>& lse, const std::vector<double>& out_b,
                            const std::vector<double>& lse_b, int d);
/// Exercise 2: the global positions rank @p r of @p sp holds of a sequence of @p T (zigzag), in
/// the order the rank keeps them.
using ZigzagMapFn = std::vector<std::int64_t> (*)(std::int64_t T, int sp, int r);

/// Every rank attends with its own block of keys (some rows of a block see none of them), the
/// partial results are gathered and merged with @p fn in rank order, and compared with one
/// Ops::attention_forward over all the keys (1e-5). Rank 0 prints the verdict.
int check_lse_merge(int argc, char** argv, LseMergeFn fn);
/// Checks @p fn's map at several (T, sp): T/sp positions per rank, every position on exactly one
/// rank, each rank's positions two runs of T/(2 sp) consecutive ones, and the causal work (score
/// entries: sum over its positions t of t + 1) the same on every rank. Rank 0 prints the verdict.
int check_zigzag_map(int argc, char** argv, ZigzagMapFn fn);

}  // namespace fivefold::ch05
