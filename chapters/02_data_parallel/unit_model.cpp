// SPDX-License-Identifier: MIT
// The serial decoder over caller-provided parameter storage (views), hooks around each unit.
#include "chapters/02_data_parallel/unit_model.hpp"

#include "common/check.hpp"

namespace fivefold::ch02 {

UnitStorage::UnitStorage(Ops& ops, const ModelConfig& cfg, const FlatLayout& layout, const std::vector<Tensor>& values,
                         const std::vector<Tensor>& grads)
    : reg_(ops, cfg.seed), parts_(ops, cfg) {
  cfg.validate();
  FIVEFOLD_CHECK(cfg.experts == 0, "UnitModel: MoE layers are not supported by data parallelism here (--experts ",
                 cfg.experts, "); use a dense model");
  const int U = layout.num_units();
  FIVEFOLD_CHECK(U == cfg.layers + 2 && static_cast<int>(values.size()) == U && static_cast<int>(grads.size()) == U,
                 "UnitModel: ", U, " units, ", values.size(), " value and ", grads.size(),
                 " grad buffers for ", cfg.layers, " layers; expected layers + 2 of each");
  // TUTORIAL: the registry holds VIEWS into the caller's storage, not memory of its own.
  for (int u = 0; u < U; ++u) {
    const Unit& unit = layout.unit(u);
    FIVEFOLD_CHECK(values[u].numel() >= unit.numel && grads[u].numel() >= unit.numel, "UnitModel: unit ", unit.name,
                   " needs ", unit.numel, " elements, got ", values[u].str(), " and ", grads[u].str());
    std::int64_t at = 0;
    for (const nn::ParamSpec& p : unit.params) {
      const std::int64_t len = shape_numel(p.shape);
      nn::Param view;
      view.name = p.name;
      view.value = values[u].flat(at, len).view(p.shape);
      view.grad = grads[u].flat(at, len).view(p.shape);
      reg_.adopt(std::move(view));
      at += len;
    }
  }
}

UnitModel::UnitModel(Ops& ops, const ModelConfig& cfg, const FlatLayout& layout, const std::vector<Tensor>& values,
                     const std::vector<Tensor>& grads)
    : UnitStorage(ops, cfg, layout, values, grads), Decoder(ops, cfg, reg_, parts_) {}

}  // namespace fivefold::ch02
