// SPDX-License-Identifier: MIT
/// @file tp_gather.hpp
/// @brief Between shards and full tensors, for cross-checks and --dump only (never in the
/// model's own forward/backward): a rank's block of a full tensor, the full tensor gathered
/// from every rank's shard with an UNCOUNTED all-gather (bookkeeping, not the algorithm), the
/// checks of shards against a serial model, and the --dump of full parameters (docs/reference.md,
/// "The dump").
/// Chapter 03 and chapter 07 (DP x TP) share them.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "backends/communicator.hpp"
#include "backends/ops.hpp"
#include "chapters/03_tensor_parallel/tp_layout.hpp"
#include "common/summary.hpp"

namespace fivefold::ch03 {

/// Rank @p rank's block of @p full (any device) split @p s over @p tp ranks, as a host tensor of
/// shape shard_shape(full.shape(), s, tp). Split::cols cuts the last dimension of a tensor
/// viewed as rows of it (so a [B, T, F] activation splits F).
Tensor block_of(const Tensor& full, Split s, int rank, int tp);

/// The full tensor (host) of which every rank of @p tp holds the block @p shard split @p s.
/// Collective over @p tp; the all-gather is not counted.
Tensor gather_full(Communicator& tp, Ops& ops, const Tensor& shard, Split s);

/// Runs @p fn with counting switched off on @p comm (restores the previous state).
template <typename Fn>
void uncounted(Communicator& comm, Fn&& fn) {
  Uncounted quiet(comm);
  fn();
}

/// Checks this rank's @p shard against its block of the serial @p full (split @p s).
CheckResult check_shard(const std::string& name, const Tensor& shard, const Tensor& full, Split s, int rank, int tp,
                        double tol);

/// Every shard of @p params (values, or gradients with @p grads) against its block of the same
/// parameter of the serial @p ref, merged into one check called @p name.
CheckResult check_all_shards(const std::string& name, TpParams& params, nn::ParamRegistry& ref, int rank, int tp,
                             bool grads, double tol);

/// Each parameter of @p params whose name passes @p pick, compared bit for bit with the same
/// parameter on rank 0 of @p comm (an uncounted all-gather), merged into one check. Collective
/// over @p comm: "the replicated norms are identical on every TP rank", "every DP replica of a
/// shard is identical".
CheckResult identical_across(Communicator& comm, Ops& ops, TpParams& params, const std::string& name,
                             const std::function<bool(const std::string&)>& pick);

/// Writes DIR/SUB/NAME.npy (SUB = @p sub, NAME = the parameter's name) for every full
/// parameter (values, or gradients with @p grads), gathered from the shards over @p tp.
/// Collective over @p tp: every rank of the group calls it; only a rank that passes a
/// non-empty @p dir writes.
void dump_full_params(Communicator& tp, Ops& ops, TpParams& params, const std::string& dir, const std::string& sub,
                      bool grads);

/// Writes @p j to DIR/config.json (creating DIR); throws Error naming the path when it cannot.
void write_config_json(const std::string& dir, const nlohmann::json& j);

}  // namespace fivefold::ch03
