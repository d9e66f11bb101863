// SPDX-License-Identifier: MIT
/// @file check.hpp
/// @brief The checks the chapter 01 exercises run, on your routine or on the chapter library's
/// (the solution): RMSNorm's backward against double-precision finite differences and the
/// backend's Ops::rmsnorm_backward; KV-cache generation against full recomputation.
#pragma once

#include <cstdint>
#include <vector>

#include "chapters/01_reference_model/generation.hpp"

namespace fivefold::ch01 {

/// An RMSNorm backward with the signature of rmsnorm_backward_by_hand: x, y = dx [N, C]
/// row-major, w [C], rstd [N]; dx overwritten (resized), dw [C] accumulates.
using RmsNormBackwardFn = void (*)(const std::vector<float>& x, const std::vector<float>& w,
                                   const std::vector<float>& rstd, const std::vector<float>& dy, std::int64_t n,
                                   std::int64_t c, std::vector<float>& dx, std::vector<float>& dw);

/// Runs @p fn on random rows and compares dx and dw with central differences (in double) of
/// sum(dy * rmsnorm(x)) and with Ops::rmsnorm_backward. Prints PASSED or what is wrong; returns
/// 0 only when both agree.
int check_rmsnorm_backward(int argc, char** argv, RmsNormBackwardFn fn);

/// Generates greedily with a KV cache whose attention is @p fn and compares the tokens (exactly)
/// and the logits (relative 1e-5) with a full forward per token, for a dense GQA model and a MoE
/// model. Prints PASSED or what is wrong; returns 0 only when both agree.
int check_kv_cache(int argc, char** argv, CacheAttendFn fn);

}  // namespace fivefold::ch01
