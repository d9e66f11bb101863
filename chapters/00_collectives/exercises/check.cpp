// SPDX-License-Identifier: MIT
// The exercise checks: world size n, a buffer of 10n+3 elements (chunks of uneven length),
// integer-valued floats so every sum is exact whatever the order. Rank 0 prints the verdict.
#include "chapters/00_collectives/exercises/check.hpp"

#include <string>

#include "backends/backend.hpp"
#include "backends/runtime.hpp"
#include "chapters/00_collectives/ring.hpp"

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

}  // namespace

int check_reduce_scatter(int argc, char** argv, ReduceScatterFn fn) {
  return run_mpi_main(argc, argv, [fn](int, char**) {
    Backend b = make_backend("cpu");
    const int n = b.world->size(), r = b.world->rank();
    const std::int64_t count = 10 * n + 3;
    std::vector<float> x(count);
    for (std::int64_t i = 0; i < count; ++i) x[i] = value(r, i);
    Tensor buf = b.ops->upload(Tensor::from_vector(x, {count}));
    Tensor scratch = ring_scratch(*b.ops, count, n);
    fn(*b.world, *b.ops, buf, scratch);
    const Chunk mine = chunk_of(count, n, r);
    std::vector<float> want(mine.size, 0.0f);
    for (std::int64_t i = 0; i < mine.size; ++i)
      for (int q = 0; q < n; ++q) want[i] += value(q, mine.offset + i);
    const std::vector<float> got = buf.flat(mine.offset, mine.size).to_vector();
    const std::string bad = first_mismatch(got, want, mine.offset);
    return exercise_verdict(
        *b.world, "reduce-scatter", bad.empty() ? bad : "chunk " + std::to_string(r) + ": " + bad,
        "follow one chunk c: it needs n-1 hops to the right to visit every rank and must end on rank c, "
        "so which rank sends it at step 0? (README, 'The idea')");
  });
}

int check_all_gather(int argc, char** argv, AllGatherFn fn) {
  return run_mpi_main(argc, argv, [fn](int, char**) {
    Backend b = make_backend("cpu");
    const int n = b.world->size(), r = b.world->rank();
    const std::int64_t count = 10 * n + 3;
    std::vector<float> want(count), x(count, -1.0f);  // -1 marks "not received yet"
    for (std::int64_t i = 0; i < count; ++i) want[i] = value(0, i);
    const Chunk mine = chunk_of(count, n, r);
    for (std::int64_t i = mine.offset; i < mine.offset + mine.size; ++i) x[i] = want[i];
    Tensor buf = b.ops->upload(Tensor::from_vector(x, {count}));
    fn(*b.world, buf);
    const std::string bad = first_mismatch(buf.to_vector(), want, 0);
    return exercise_verdict(*b.world, "all-gather", bad,
                            "at step 0 a rank sends its own chunk; what did it receive at step s-1? "
                            "(README, 'The idea')");
  });
}

}  // namespace fivefold::ch00
