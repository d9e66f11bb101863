// SPDX-License-Identifier: MIT
/// @file dump.hpp
/// @brief The --dump (docs/reference.md, "The dump") for a data-parallel run: full, gathered
/// tensors whatever the
/// ZeRO stage (rank 0 writes; the gathers are uncounted bookkeeping). The first training run of
/// the process writes it.
#pragma once

#include <string>
#include <vector>

#include "chapters/02_data_parallel/steps.hpp"

namespace fivefold::ch02 {

/// Writes the dump of one run. Every method is collective over @p comm when enabled (and
/// enabled() is the same on every rank).
class DpDump {
 public:
  /// Enabled when --dump was given and no run has dumped yet; @p run names the run in config.json.
  DpDump(Context& ctx, Lab& lab, Communicator& comm, const DpConfig& dc, const std::string& run);
  /// True when this run writes the dump.
  bool enabled() const { return enabled_; }
  /// config.json and params/ (the initial parameters, full).
  void begin();
  /// inputs/targets of step 0 (and inputs_s&lt;k&gt;/targets_s&lt;k&gt; with --data stream).
  void batch(int k);
  /// Step 0: logits.npy (every rank's rows, gathered) and grads/ from @p dense_grads [Ψ].
  void step0(const Tensor& local_logits, const Tensor& dense_grads);
  /// loss.npy and final/ from @p dense_final [Ψ].
  void end(const std::vector<double>& losses, const Tensor& dense_final);

 private:
  void params(const std::string& sub, const Tensor& dense) const;
  Context* ctx_;
  Lab* lab_;
  Communicator* comm_;
  DpConfig dc_;
  std::string run_, dir_;
  bool enabled_ = false;
};

}  // namespace fivefold::ch02
