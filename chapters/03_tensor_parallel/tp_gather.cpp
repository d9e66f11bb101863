// SPDX-License-Identifier: MIT
// Blocks of full tensors and full tensors from blocks (checks and dumps).
#include "chapters/03_tensor_parallel/tp_gather.hpp"

#include "common/check.hpp"

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

}  // namespace fivefold::ch03
