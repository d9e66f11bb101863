// SPDX-License-Identifier: MIT
// Step 3: the other collectives by hand, each compared with the library.
// - all-gather: the second phase of the ring all-reduce on its own.
// - reduce-scatter: the first phase on its own.
// - broadcast: a binomial tree on send/recv (ceil(log2 n) rounds; the set of ranks holding the
//   data doubles every round).
// - all-to-all: pairwise exchange, n-1 sendrecv steps (step s: send to r+s, receive from r-s).
// The library's all_gather/reduce_scatter need equal blocks; with uneven chunks we compare with
// what the result must be (the full random tensor, or the chunk of the library's all-reduce).
// Run: mpirun -np 4 build/cpu/bin/ch00_collectives --step 3
#include "chapters/00_collectives/ring.hpp"
#include "chapters/00_collectives/steps.hpp"
#include "common/narrate.hpp"
#include "common/rng.hpp"

namespace fivefold::ch00 {

namespace {

Tensor draw(Context& ctx, const Options& o, const std::string& name, std::int64_t count) {
  return ctx.ops.upload(rng::draw(static_cast<std::uint64_t>(o.seed), name, {count}, rng::Dist::normal, 0.0f, 1.0f));
}

void all_gather(Context& ctx, const Options& o) {
  const int n = ctx.size(), r = ctx.rank();
  const Chunk mine = chunk_of(o.count, n, r);
  // Rank r holds chunk r of one global tensor X, drawn directly (the RNG makes a shard equal
  // to the same slice of the full tensor).
  const Tensor piece = ctx.ops.upload(rng::draw_block(static_cast<std::uint64_t>(o.seed), "ch00.step3.gather",
                                                      {o.count}, {mine.offset}, {mine.size}, rng::Dist::normal,
                                                      0.0f, 1.0f));  // [chunk r]
  Tensor hand = ctx.ops.zeros({o.count});
  Tensor dst = hand.flat(mine.offset, mine.size);
  dst.copy_from(piece);
  ring_all_gather(ctx.world, hand);
  ctx.narrator.say("all-gather: rank r holds chunk r of X; n-1 ring steps, each forwarding the chunk received last.");
  ctx.say_ranks("held elements [" + std::to_string(mine.offset) + ", " + std::to_string(mine.offset + mine.size) +
                ") of X, now all " + std::to_string(o.count));
  Tensor ref;
  if (o.count % n == 0) {
    ref = ctx.ops.empty({o.count});
    ctx.world.all_gather(piece, ref);
  } else {
    ctx.narrator.say("  (uneven chunks: the library needs equal blocks, so we compare with X itself)");
    ref = draw(ctx, o, "ch00.step3.gather", o.count);
  }
  ctx.check(compare("ring all-gather == reference (exact)", hand, ref, 0));
}

void reduce_scatter(Context& ctx, const Options& o) {
  const int n = ctx.size(), r = ctx.rank();
  const Chunk mine = chunk_of(o.count, n, r);
  const Tensor x = draw(ctx, o, rank_name("ch00.step3.rs", r), o.count);
  Tensor hand = x.clone();
  ring_reduce_scatter(ctx.world, ctx.ops, hand);
  ctx.narrator.say("reduce-scatter: the ring's first phase; rank r ends with the sum over ranks of chunk r.");
  Tensor ref;
  if (o.count % n == 0) {
    ref = ctx.ops.empty({o.count / n});
    ctx.world.reduce_scatter(x, ref);
  } else {
    ctx.narrator.say("  (uneven chunks: we compare with chunk r of the library's all-reduce)");
    Tensor full = x.clone();
    ctx.world.all_reduce(full);
    ref = full.flat(mine.offset, mine.size);
  }
  ctx.check(compare("ring reduce-scatter == library (fp32, 1e-6)", hand.flat(mine.offset, mine.size), ref, 1e-6));
}

void broadcast(Context& ctx, const Options& o) {
  const int n = ctx.size(), r = ctx.rank();
  const int root = n - 1;  // not 0, so the ring arithmetic (distance from the root) shows
  Tensor init = r == root ? draw(ctx, o, "ch00.step3.bcast", o.count) : ctx.ops.zeros({o.count});
  Tensor hand = init.clone(), ref = init.clone();
  tree_broadcast(ctx.world, hand, root);
  ctx.world.broadcast(ref, root);
  std::string rounds;
  for (int mask = 1; mask < n; mask <<= 1) {
    rounds += "\n  round with mask " + std::to_string(mask) + ":";
    for (int v = 0; v < mask && v + mask < n; ++v)
      rounds += " " + std::to_string(ring_index(root + v, n)) + "->" + std::to_string(ring_index(root + v + mask, n));
  }
  ctx.narrator.say("broadcast from rank " + std::to_string(root) + " along a binomial tree (sender->receiver):" +
                   (n == 1 ? std::string(" nothing to send") : rounds));
  ctx.check(compare("tree broadcast == library (exact)", hand, ref, 0));
}

void all_to_all(Context& ctx, const Options& o) {
  const int n = ctx.size(), r = ctx.rank();
  // Rank r sends block j (chunk_of(count, n, j) elements) to rank j, so it receives n blocks of
  // the size of chunk r.
  std::vector<std::int64_t> send_counts(n), recv_counts(n, chunk_of(o.count, n, r).size);
  for (int j = 0; j < n; ++j) send_counts[j] = chunk_of(o.count, n, j).size;
  const Tensor in = draw(ctx, o, rank_name("ch00.step3.a2a", r), o.count);
  Tensor hand = ctx.ops.zeros({n * recv_counts[0]}), ref = ctx.ops.zeros({n * recv_counts[0]});
  pairwise_all_to_allv(ctx.world, in, send_counts, hand, recv_counts);
  ctx.world.all_to_allv(in, send_counts, ref, recv_counts);
  std::string plan;
  for (int s = 1; s < n; ++s)
    plan += " step " + std::to_string(s) + ": to " + std::to_string(ring_index(r + s, n)) + ", from " +
            std::to_string(ring_index(r - s, n)) + ";";
  ctx.narrator.say("all-to-all by pairwise exchange: block j of rank r goes to rank j; own block copied locally.");
  ctx.say_ranks(n == 1 ? std::string("keeps its only block") : "sends/receives" + plan);
  ctx.check(compare("pairwise all-to-all == library all_to_allv (exact)", hand, ref, 0));
}

}  // namespace

void step3_collectives(Context& ctx, const Options& o) {
  all_gather(ctx, o);
  reduce_scatter(ctx, o);
  broadcast(ctx, o);
  all_to_all(ctx, o);
}

}  // namespace fivefold::ch00
