// SPDX-License-Identifier: MIT
// Exercise 2: the ring all-gather (phase 2 of the ring all-reduce, chapter 00 step 2).
// Fill in the lines marked EXERCISE, then build and run:
//   cmake --build build/cpu --target ch00_ex2_all_gather
//   mpirun -np 3 build/cpu/bin/ch00_ex2_all_gather            (try -np 2, 4, 5 too)
//   ... --hint 1 (the idea and the API), then --hint 2 (the rule)
// Goal: on entry rank r holds only chunk r; after n-1 steps every rank holds every chunk.
// Invariant: at every step each rank sends one chunk and receives one it does not have yet. No
// scratch buffer is needed: a received chunk lands straight in its place. The chapter's own
// version is in ../ring.cpp: read it after you are done.
#include "chapters/00_collectives/exercises/check.hpp"
#include "chapters/00_collectives/ring.hpp"

using namespace fivefold;

void exercise_all_gather(Communicator& comm, Tensor& buf) {
  const int n = comm.size(), r = comm.rank();
  [[maybe_unused]] const int right = ring_index(r + 1, n), left = ring_index(r - 1, n);
  for (int s = 0; s < n - 1; ++s) {
    // EXERCISE: at step 0 rank r sends the chunk it owns; at every later step it forwards the
    // chunk it received in the step before. Which chunk does it send and receive at step s?
    const int send_chunk = r;  // EXERCISE: replace r
    const int recv_chunk = r;  // EXERCISE: replace r
    [[maybe_unused]] const Chunk out = chunk_of(buf.numel(), n, send_chunk);
    [[maybe_unused]] const Chunk in = chunk_of(buf.numel(), n, recv_chunk);
    // EXERCISE: one comm.sendrecv: send buf.flat(out.offset, out.size) to `right`, receive
    //           buf.flat(in.offset, in.size) from `left` (a view: it writes into buf itself).
  }
}

int main(int argc, char** argv) { return ch00::check_all_gather(argc, argv, exercise_all_gather); }
