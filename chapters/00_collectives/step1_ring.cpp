// SPDX-License-Identifier: MIT
// Step 1: point-to-point messages and the ring. Every rank r has a right neighbour r+1 and a
// left neighbour r-1 (mod n). A sendrecv sends to one and receives from the other in one call,
// which cannot deadlock: that is the building block of every ring collective in this chapter.
// Then a token goes once around the ring with plain send/recv, each rank adding r+1.
// Run: mpirun -np 4 build/cpu/bin/ch00_collectives --step 1
#include <cstdio>

#include "chapters/00_collectives/ring.hpp"
#include "chapters/00_collectives/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch00 {

namespace {
Tensor scalar(Ops& ops, float v) { return ops.upload(Tensor::from_vector(std::vector<float>{v}, {1})); }
float value(const Tensor& t) { return t.to_vector().at(0); }
std::string num(float v) { return fmt("%g", v); }
}  // namespace

void step1_ring(Context& ctx, const Options&) {
  const int n = ctx.size(), r = ctx.rank();
  const int right = ring_index(r + 1, n), left = ring_index(r - 1, n);
  ctx.narrator.say("The " + std::to_string(n) + " ranks form a ring: rank r sends to r+1 and receives from r-1 (mod " +
                   std::to_string(n) + ").\n1a. Neighbour exchange: one sendrecv per rank, all at once.");

  // 1a. Every rank sends its own number to the right and receives the left neighbour's.
  Tensor mine = scalar(ctx.ops, static_cast<float>(r));
  Tensor got = ctx.ops.zeros({1});
  ctx.world.sendrecv(mine, right, got, left);  // TUTORIAL: send right, receive left, one call
  ctx.say_ranks("holds " + std::to_string(r) + ", sent it to rank " + std::to_string(right) + ", received " +
                num(value(got)) + " from rank " + std::to_string(left));
  ctx.check(compare("sendrecv: got the left neighbour's number", got, scalar(ctx.ops, static_cast<float>(left)), 0));

  // 1b. A token around the ring with blocking send/recv. Rank 0 starts it; every rank adds
  // r+1 and passes it on; it comes back to rank 0 holding 1 + 2 + ... + n = n(n+1)/2.
  ctx.narrator.say("1b. A token around the ring with send/recv: rank 0 starts with 1, rank r receives from r-1,\n"
                   "    adds r+1 and sends to r+1; rank 0 finally receives n(n+1)/2 = " +
                   std::to_string(n * (n + 1) / 2) + ".");
  Tensor token = ctx.ops.zeros({1});
  Tensor mine_plus = scalar(ctx.ops, static_cast<float>(r + 1));
  float received = 0;
  if (n == 1) {
    ctx.ops.add(token, token, mine_plus);  // alone: the ring is just me
    received = value(token);
  } else if (r == 0) {
    ctx.ops.add(token, token, mine_plus);
    ctx.world.send(token, right);         // start the token...
    ctx.world.recv(token, left);          // ...and wait for it to come back
    received = value(token);
  } else {
    ctx.world.recv(token, left);          // TUTORIAL: blocks until the left neighbour sends
    received = value(token);
    ctx.ops.add(token, token, mine_plus);
    ctx.world.send(token, right);
  }
  // What each rank must have received: rank r > 0 gets 1 + ... + r, rank 0 gets the full sum.
  const float expect = r == 0 ? n * (n + 1) / 2.0f : r * (r + 1) / 2.0f;
  ctx.say_ranks("received the token = " + num(received) + (r == 0 ? " (back home)" : ", passed on " +
                num(value(token)) + " to rank " + std::to_string(right)));
  ctx.check(compare("token around the ring: received 1+...+r", scalar(ctx.ops, received), scalar(ctx.ops, expect), 0));
}

}  // namespace fivefold::ch00
