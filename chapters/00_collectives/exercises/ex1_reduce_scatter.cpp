// SPDX-License-Identifier: MIT
// Exercise 1: the ring reduce-scatter (phase 1 of the ring all-reduce, chapter 00 step 2).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch00_ex1_reduce_scatter
//   mpirun -np 3 build/cpu/bin/ch00_ex1_reduce_scatter        (try -np 2, 4, 5 too)
//   ... --hint 1 (the idea and the API), then --hint 2 (the rule)
// Goal: after n-1 steps, chunk r of rank r's buffer holds the sum over all ranks of chunk r.
// Invariant: at every step each rank sends one chunk and receives one, and each chunk visits
// every rank exactly once. The buffer has 10n+1 elements, so the chunks are not all the same
// length (chunk_of). The chapter's own version is in ../ring.cpp: read it after you are done.
#include "chapters/00_collectives/exercises/check.hpp"
#include "chapters/00_collectives/ring.hpp"

using namespace fivefold;

void exercise_reduce_scatter(Communicator& comm, Ops& ops, Tensor& buf, Tensor& scratch) {
  const int n = comm.size(), r = comm.rank();
  [[maybe_unused]] const int right = ring_index(r + 1, n), left = ring_index(r - 1, n);
  for (int s = 0; s < n - 1; ++s) {
    // EXERCISE: which chunk does rank r send at step s, and which does it receive? Chunk c must
    // start on one rank, pass through every rank once (each adds its own part), and arrive,
    // complete, on rank c after the last step (s = n-2). Use ring_index() for "mod n".
    const int send_chunk = r;  // EXERCISE: replace r
    const int recv_chunk = r;  // EXERCISE: replace r
    [[maybe_unused]] const Chunk out = chunk_of(buf.numel(), n, send_chunk);
    const Chunk in = chunk_of(buf.numel(), n, recv_chunk);
    [[maybe_unused]] Tensor recv = scratch.flat(0, in.size);
    [[maybe_unused]] Tensor mine = buf.flat(in.offset, in.size);
    // EXERCISE: in ONE call of comm.sendrecv, send buf.flat(out.offset, out.size) to `right`
    //           and receive into `recv` from `left` (why one call and not send then recv?).
    // EXERCISE: reduce: mine = mine + recv, with ops.add (its output may alias an input).
  }
}

int main(int argc, char** argv) { return ch00::check_reduce_scatter(argc, argv, exercise_reduce_scatter); }
