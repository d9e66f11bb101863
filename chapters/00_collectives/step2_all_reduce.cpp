// SPDX-License-Identifier: MIT
// Step 2: the ring all-reduce, by hand. Phase 1 (reduce-scatter): n-1 steps; in step s rank r
// sends its partial sum of chunk r-s-1 to the right and adds the left's partial sum of chunk
// r-s-2 into its own. Chunk r travels through every rank once, so after n-1 steps rank r holds
// the full sum of chunk r. Phase 2 (all-gather): n-1 steps passing the finished chunks around.
// A small buffer shows every step; a large random one is compared with the library.
// Run: mpirun -np 4 build/cpu/bin/ch00_collectives --step 2
#include <cmath>

#include "chapters/00_collectives/ring.hpp"
#include "chapters/00_collectives/steps.hpp"
#include "common/narrate.hpp"
#include "common/rng.hpp"

namespace fivefold::ch00 {

std::string show_chunks(const Tensor& t, int n) {
  const std::vector<float> v = t.to_vector();
  std::string s = "[";
  for (int c = 0; c < n; ++c) {
    const Chunk ch = chunk_of(t.numel(), n, c);
    if (c) s += " |";
    for (std::int64_t i = ch.offset; i < ch.offset + ch.size; ++i) s += " " + fmt("%g", v[i]);
  }
  return s + " ]";
}

std::string rank_name(const std::string& base, int rank) { return base + ".rank" + std::to_string(rank); }

namespace {

/// The small demo: n+1 elements, so chunk 0 has two elements and the others one. Rank r holds
/// 10^r everywhere (for n <= 7, exact in fp32), so a partial sum's digits say which ranks it has.
void narrated_small(Context& ctx) {
  const int n = ctx.size(), r = ctx.rank();
  const std::int64_t count = n + 1;
  const float mine = n <= 7 ? static_cast<float>(std::pow(10.0, r)) : 1.0f;
  Tensor buf = ctx.ops.empty({count});
  ctx.ops.fill(buf, mine);
  Tensor ref = buf.clone();
  Tensor scratch = ring_scratch(ctx.ops, count, n);
  ctx.narrator.say("A small buffer of " + std::to_string(count) + " elements in " + std::to_string(n) +
                   " chunks ('|'); rank r holds " + (n <= 7 ? "10^r, so the digits of a sum name its ranks:" : "1:"));
  ctx.say_ranks(show_chunks(buf, n));
  const int right = ring_index(r + 1, n), left = ring_index(r - 1, n);
  ctx.narrator.say("Phase 1, reduce-scatter: at each step every rank sends one chunk right and adds the chunk from the\n"
                   "left into its own copy (which chunk at step s: exercise 1).");
  for (int s = 0; s < n - 1; ++s) {
    ring_reduce_scatter_step(ctx.world, ctx.ops, buf, s, scratch);
    ctx.narrator.say(" step " + std::to_string(s) + ":");
    ctx.say_ranks("sent chunk " + std::to_string(reduce_scatter_send_chunk(r, s, n)) + " to " + std::to_string(right) +
                  ", added chunk " + std::to_string(reduce_scatter_recv_chunk(r, s, n)) + " from " +
                  std::to_string(left) + " -> " + show_chunks(buf, n));
  }
  ctx.narrator.say("Now rank r owns the complete sum of chunk r.\n"
                   "Phase 2, all-gather: at each step every rank forwards a chunk right and stores the chunk from the\n"
                   "left in its place (which chunk at step s: exercise 2).");
  for (int s = 0; s < n - 1; ++s) {
    ring_all_gather_step(ctx.world, buf, s);
    ctx.narrator.say(" step " + std::to_string(s) + ":");
    ctx.say_ranks("sent chunk " + std::to_string(all_gather_send_chunk(r, s, n)) + " to " + std::to_string(right) +
                  ", got chunk " + std::to_string(all_gather_recv_chunk(r, s, n)) + " from " +
                  std::to_string(left) + " -> " + show_chunks(buf, n));
  }
  ctx.world.all_reduce(ref);
  ctx.check(compare("small ring all-reduce == library (exact)", buf, ref, 0));
}

}  // namespace

void step2_all_reduce(Context& ctx, const Options& o) {
  const int n = ctx.size(), r = ctx.rank();
  narrated_small(ctx);

  // Large random buffer: rank r's values are drawn from the counter-based RNG under its own name.
  const Tensor x = ctx.ops.upload(rng::draw(static_cast<std::uint64_t>(o.seed), rank_name("ch00.step2.x", r),
                                            {o.count}, rng::Dist::normal, 0.0f, 1.0f));  // [count]
  Tensor hand = x.clone(), lib = x.clone();
  Tensor scratch = ring_scratch(ctx.ops, o.count, n);
  ring_all_reduce(ctx.world, ctx.ops, hand, ReduceOp::sum, &scratch);
  ctx.world.all_reduce(lib);
  ctx.narrator.say("A random buffer of " + std::to_string(o.count) + " floats (" + human_bytes(4.0 * o.count) +
                   ") per rank vs the library's all_reduce.\n"
                   "Floating-point addition is not associative: the ring sums chunk c in the order c+1, c+2, ..., c\n"
                   "(around the ring) while the library may use another order or a tree, so results differ in the\n"
                   "last bits. We allow a relative L2 error of 1e-6 (fp32 rounds at ~6e-8 per addition).");
  ctx.check(compare("ring all-reduce == library (random fp32)", hand, lib, 1e-6));

  // Integer-valued floats in [-100, 100]: every partial sum is an exact fp32 integer, so the
  // order no longer matters and the two results must be bitwise equal.
  std::vector<float> ints(static_cast<std::size_t>(o.count));
  for (std::int64_t i = 0; i < o.count; ++i)
    ints[i] = static_cast<float>(rng::integer(static_cast<std::uint64_t>(o.seed), rank_name("ch00.step2.int", r), i, 201) - 100);
  Tensor hand_i = ctx.ops.upload(Tensor::from_vector(ints, {o.count}));
  Tensor lib_i = hand_i.clone();
  ring_all_reduce(ctx.world, ctx.ops, hand_i, ReduceOp::sum, &scratch);
  ctx.world.all_reduce(lib_i);
  ctx.narrator.say("Integer-valued floats: sums of small integers are exact in fp32, so the order cannot matter.");
  ctx.check(compare("ring all-reduce == library (integer-valued, exact)", hand_i, lib_i, 0));
}

}  // namespace fivefold::ch00
