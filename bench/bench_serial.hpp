// SPDX-License-Identifier: MIT
/// @file bench_serial.hpp
/// @brief The serial baseline the training benches time in the same run as their parallel rows:
/// nn::Model and one nn::train_step on the whole batch, on rank 0 alone (the other ranks wait).
#pragma once

#include <memory>
#include <vector>

#include "bench/bench_mpi.hpp"
#include "nn/data.hpp"
#include "nn/model.hpp"
#include "nn/train_step.hpp"

namespace fivefold::bench {

/// One serial training step of @p cfg per iteration of @p state, after a warm-up step; returns
/// the iterations' times (max over ranks, so every rank returns the same) and sets each as the
/// iteration's manual time.
inline std::vector<double> time_serial_steps(benchmark::State& state, Ops& ops, const ModelConfig& cfg) {
  const bool mine = MpiSession::world_rank() == 0;
  std::unique_ptr<nn::Model> model;
  std::unique_ptr<nn::LocalUpdate> update;
  if (mine) {
    model = std::make_unique<nn::Model>(ops, cfg);
    update = std::make_unique<nn::LocalUpdate>(ops, model->params(), nn::AdamWConfig::from(cfg));
  }
  const nn::Batch batch = nn::synthetic_batch(cfg.seed, cfg.vocab, cfg.batch, cfg.seq);
  auto step = [&] {
    if (!mine) return;
    nn::train_step(*model, *update, batch);
    ops.synchronize();
  };
  step();  // warm-up
  std::vector<double> times;
  for (auto _ : state) {
    times.push_back(time_max_over_ranks(step));
    state.SetIterationTime(times.back());
  }
  return times;
}

}  // namespace fivefold::bench
