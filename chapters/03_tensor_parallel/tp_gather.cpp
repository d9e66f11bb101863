// SPDX-License-Identifier: MIT
// Blocks of full tensors and full tensors from blocks (checks and dumps).
#include "chapters/03_tensor_parallel/tp_gather.hpp"

#include <filesystem>
#include <fstream>

#include "common/check.hpp"
#include "common/output.hpp"
#include "common/npy.hpp"

namespace fivefold::ch03 {

Tensor block_of(const Tensor& full, Split s, int rank, int tp) {
  const Tensor h = full.to(Device::host);
  if (s == Split::replicated) return h.clone();
  if (s == Split::rows) {
    const std::int64_t rows = h.dim(0) / tp;
    FIVEFOLD_CHECK(h.dim(0) % tp == 0, "block_of: ", h.str(), " rows do not split in ", tp);
    return h.narrow(rank * rows, rows).clone();
  }
  const std::int64_t k = h.dim(-1), kl = k / tp, n = h.numel() / k;
  FIVEFOLD_CHECK(k % tp == 0, "block_of: ", h.str(), " columns do not split in ", tp);
  Tensor out = Tensor::empty(shard_shape(h.shape(), s, tp), h.dtype());
  for (std::int64_t i = 0; i < n; ++i) out.flat(i * kl, kl).copy_from(h.flat(i * k + rank * kl, kl));
  return out;
}

Tensor gather_full(Communicator& tp, Ops& ops, const Tensor& shard, Split s) {
  if (s == Split::replicated) return shard.to(Device::host);
  const int n = tp.size();
  Tensor all = ops.empty({n * shard.numel()});
  uncounted(tp, [&] { tp.all_gather(shard.view({shard.numel()}), all); });
  const Tensor g = all.to(Device::host);  // [tp, shard...]: rank r's block at r * shard.numel()
  Shape full = shard.shape();
  if (s == Split::rows) {
    full.front() *= n;
    return g.view(full);
  }
  full.back() *= n;
  const std::int64_t kl = shard.dim(-1), rows = shard.numel() / kl, k = kl * n;
  Tensor out = Tensor::empty(full);
  for (int r = 0; r < n; ++r)
    for (std::int64_t i = 0; i < rows; ++i)
      out.flat(i * k + r * kl, kl).copy_from(g.flat(r * shard.numel() + i * kl, kl));
  return out;
}

CheckResult check_shard(const std::string& name, const Tensor& shard, const Tensor& full, Split s, int rank, int tp,
                        double tol) {
  return compare(name, shard, block_of(full, s, rank, tp), tol);
}

CheckResult check_all_shards(const std::string& name, TpParams& params, nn::ParamRegistry& ref, int rank, int tp,
                             bool grads, double tol) {
  CheckResult acc = compare(name, Tensor::zeros({1}), Tensor::zeros({1}), tol);
  for (nn::Param& p : params.all()) {
    const nn::Param& q = ref.get(p.name);
    merge(acc, check_shard(name, grads ? p.grad : p.value, grads ? q.grad : q.value, split_of(p.name), rank, tp, tol));
  }
  return acc;
}

CheckResult identical_across(Communicator& comm, Ops& ops, TpParams& params, const std::string& name,
                             const std::function<bool(const std::string&)>& pick) {
  CheckResult acc = compare(name, Tensor::zeros({1}), Tensor::zeros({1}), 0.0);
  for (nn::Param& p : params.all()) {
    if (!pick(p.name)) continue;
    Tensor all = ops.empty({comm.size(), p.value.numel()});
    uncounted(comm, [&] { comm.all_gather(p.value.view({p.value.numel()}), all); });
    const Tensor h = all.to(Device::host);
    merge(acc, compare(name, p.value, h.narrow(0, 1).view(p.value.shape()), 0.0));  // mine vs rank 0's
  }
  return acc;
}

void dump_full_params(Communicator& tp, Ops& ops, TpParams& params, const std::string& dir, const std::string& sub,
                      bool grads) {
  for (nn::Param& p : params.all()) {
    const Tensor full = gather_full(tp, ops, grads ? p.grad : p.value, split_of(p.name));
    if (!dir.empty()) npy::save(dir + "/" + sub + "/" + p.name + ".npy", full);
  }
}

void write_config_json(const std::string& dir, const nlohmann::json& j) { write_dump_config(dir, j); }

}  // namespace fivefold::ch03
