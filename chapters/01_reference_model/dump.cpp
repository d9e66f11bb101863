// SPDX-License-Identifier: MIT
// The --dump files (see dump.hpp). npy::save creates the directories it needs.
#include "chapters/01_reference_model/dump.hpp"

#include <filesystem>
#include <fstream>

#include "common/check.hpp"
#include "common/output.hpp"
#include "common/npy.hpp"

namespace fivefold::ch01 {

void Dump::config(const nlohmann::json& j) const {
  if (enabled()) write_dump_config(dir_, j);
}

void Dump::tensor(const std::string& name, const Tensor& t) const {
  if (enabled()) npy::save(dir_ + "/" + name + ".npy", t);
}

void Dump::params(const std::string& sub, const nn::ParamRegistry& reg, bool grads) const {
  if (!enabled()) return;
  for (const nn::Param& p : reg.all()) npy::save(dir_ + "/" + sub + "/" + p.name + ".npy", grads ? p.grad : p.value);
}

void Dump::losses(const std::vector<double>& loss) const {
  if (!enabled()) return;
  std::vector<float> l(loss.begin(), loss.end());
  npy::save(dir_ + "/loss.npy", Tensor::from_vector(l, {static_cast<std::int64_t>(l.size())}));
}

void Dump::batch(int k, const nn::Batch& b) const {
  if (!enabled()) return;
  if (k == 0) {
    tensor("inputs", b.inputs);
    tensor("targets", b.targets);
  }
  tensor("inputs_s" + std::to_string(k), b.inputs);
  tensor("targets_s" + std::to_string(k), b.targets);
}

}  // namespace fivefold::ch01
