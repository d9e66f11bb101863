// SPDX-License-Identifier: MIT
// The exercise checks: world size n, a buffer of 10n+1 elements (never a multiple of n > 1, so
// the chunks are uneven at every world size),
// integer-valued floats so every sum is exact whatever the order. Rank 0 prints the verdict.
#include "chapters/00_collectives/exercises/check.hpp"

#include <string>

#include "chapters/00_collectives/ring.hpp"
#include "chapters/exercise.hpp"

namespace fivefold::ch00 {

namespace {

/// Element i of rank r's buffer: a small integer, different on every rank and element.
float value(int r, std::int64_t i) { return static_cast<float>((r + 1) * 100 + i % 17); }

/// Compares @p got with @p want; on a mismatch describes the first bad element.
std::string first_mismatch(const std::vector<float>& got, const std::vector<float>& want, std::int64_t offset) {
  for (std::size_t i = 0; i < want.size(); ++i)
    if (got[i] != want[i])
      return "element " + std::to_string(offset + static_cast<std::int64_t>(i)) + " is " + std::to_string(got[i]) +
             ", expected " + std::to_string(want[i]);
  return {};
}

const char* const kHintRs1 =
    "the idea and the API\n"
    "  Follow one chunk c around the ring: at every step it moves one rank to the right and the rank\n"
    "  that receives it adds its own part. It needs n-1 hops to visit every rank, and it must END on\n"
    "  rank c. So at step 0, which rank must hold it, and at step s? Turn that around: which chunk\n"
    "  does rank r hold (send) at step s?\n"
    "  API: Communicator::sendrecv (backends/communicator.hpp) sends and receives in one call, so no\n"
    "  rank waits for a send that nobody receives yet; Ops::add (backends/ops.hpp; its output may\n"
    "  alias an input); ring_index (chapters/00_collectives/ring.hpp) is 'mod n' for negatives too.";
const char* const kHintRs2 =
    "the rule\n"
    "  At step s rank r sends chunk (r - s - 1) mod n to r+1 and receives chunk (r - s - 2) mod n from\n"
    "  r-1, then adds the received partial sum into its own copy of that chunk.";
const char* const kHintAg1 =
    "the idea and the API\n"
    "  At step 0 every rank sends the chunk it owns; at step s it forwards the chunk it received at\n"
    "  step s-1 (which came from its left neighbour). So chunk c reaches rank c+s+1 at step s.\n"
    "  API: Communicator::sendrecv (backends/communicator.hpp); receive straight into\n"
    "  buf.flat(offset, size), a view (common/tensor.hpp); ring_index (chapters/00_collectives/ring.hpp).";
const char* const kHintAg2 =
    "the rule\n"
    "  At step s rank r sends chunk (r - s) mod n to r+1 and receives chunk (r - s - 1) mod n from r-1.";

}  // namespace

int check_reduce_scatter(int argc, char** argv, ReduceScatterFn fn) {
  return run_exercise(argc, argv, kHintRs1, kHintRs2, [fn](Communicator& world, Ops& ops) {
    const int n = world.size(), r = world.rank();
    const std::int64_t count = 10 * n + 1;
    std::vector<float> x(count);
    for (std::int64_t i = 0; i < count; ++i) x[i] = value(r, i);
    Tensor buf = ops.upload(Tensor::from_vector(x, {count}));
    Tensor scratch = ring_scratch(ops, count, n);
    fn(world, ops, buf, scratch);
    const Chunk mine = chunk_of(count, n, r);
    std::vector<float> want(mine.size, 0.0f);
    for (std::int64_t i = 0; i < mine.size; ++i)
      for (int q = 0; q < n; ++q) want[i] += value(q, mine.offset + i);
    const std::vector<float> got = buf.flat(mine.offset, mine.size).to_vector();
    const std::string bad = first_mismatch(got, want, mine.offset);
    return verdict(world, "reduce-scatter",
                   bad.empty() ? bad : "rank " + std::to_string(r) + ", its chunk " + std::to_string(r) + ": " + bad);
  });
}

int check_all_gather(int argc, char** argv, AllGatherFn fn) {
  return run_exercise(argc, argv, kHintAg1, kHintAg2, [fn](Communicator& world, Ops& ops) {
    const int n = world.size(), r = world.rank();
    const std::int64_t count = 10 * n + 1;
    std::vector<float> want(count), x(count, -1.0f);  // -1 marks "not received yet"
    for (std::int64_t i = 0; i < count; ++i) want[i] = value(0, i);
    const Chunk mine = chunk_of(count, n, r);
    for (std::int64_t i = mine.offset; i < mine.offset + mine.size; ++i) x[i] = want[i];
    Tensor buf = ops.upload(Tensor::from_vector(x, {count}));
    fn(world, buf);
    const std::string bad = first_mismatch(buf.to_vector(), want, 0);
    return verdict(world, "all-gather", bad.empty() ? bad : "rank " + std::to_string(r) + ": " + bad);
  });
}

}  // namespace fivefold::ch00
