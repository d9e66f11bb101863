// SPDX-License-Identifier: MIT
// Step 1: the parameters. Every tensor of the model by its Hugging Face Llama name, with its
// shape, element count and bytes (fp32), grouped and compared with the closed-form count N.
// Run: build/cpu/bin/ch01_reference_model --step 1   (add --experts 4 for a MoE model)
#include <algorithm>
#include <cmath>

#include "chapters/01_reference_model/costs.hpp"
#include "chapters/01_reference_model/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch01 {

namespace {

bool in_group(const ParamGroup& g, const std::string& name) {
  if (!g.match.empty() && g.match[0] == '=') return name == g.match.substr(1);
  return name.find(g.match) != std::string::npos;
}

}  // namespace

void step1_parameters(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  nn::Model model(ctx.ops, cfg);  // registers and initialises every parameter (and its gradient)
  nn::ParamRegistry& reg = model.params();
  ctx.narrator.say(
      "The model: V " + std::to_string(cfg.vocab) + ", C " + std::to_string(cfg.dim) + ", H " +
      std::to_string(cfg.heads) + " query heads and Hkv " + std::to_string(cfg.kv_heads) + " key/value heads of hd " +
      std::to_string(cfg.head_dim()) + ", F " + std::to_string(cfg.ffn) + ", L " + std::to_string(cfg.layers) +
      (cfg.experts > 0 ? ", E " + std::to_string(cfg.experts) + " experts (top-" + std::to_string(cfg.topk) +
                             ") in layers with l % " + std::to_string(cfg.moe_every) + " == " +
                             std::to_string(cfg.moe_every - 1)
                       : std::string(", dense")) +
      ".\nWeights are drawn from the counter-based RNG by (seed, name, element index): N(0, 0.02), norm gains 1.\n"
      "Linear weights are [out, in], as torch.nn.Linear: y = x W^T.");

  // Every parameter (layers past the first two are alike; they are summarised).
  Table t{"Parameters (fp32)", {"name", "shape", "elements", "bytes"}, {}};
  std::int64_t skipped = 0, skipped_n = 0;
  for (const nn::Param& p : reg.all()) {
    const bool late = p.name.rfind("layers.", 0) == 0 && std::stoi(p.name.substr(7)) >= 2;
    if (late && cfg.layers > 3) {
      ++skipped;
      skipped_n += p.value.numel();
      continue;
    }
    t.add({p.name, shape_str(p.value.shape()), std::to_string(p.value.numel()), human_bytes(p.value.nbytes())});
  }
  if (skipped > 0)
    t.add({"layers.2 .. layers." + std::to_string(cfg.layers - 1) + " (" + std::to_string(skipped) + " tensors)",
           "as layers.1", std::to_string(skipped_n), human_bytes(4.0 * skipped_n)});
  ctx.show(t);

  // The closed form, group by group, against what the registry holds.
  Table g{"Parameter count: formula vs registry", {"group", "formula", "formula count", "registry"}, {}};
  CheckResult groups;
  groups.name = "parameter count per group == formula";
  groups.passed = true;
  for (const ParamGroup& pg : param_groups(cfg)) {
    std::int64_t n = 0;
    for (const nn::Param& p : reg.all())
      if (in_group(pg, p.name)) n += p.value.numel();
    g.add({pg.name, pg.formula, std::to_string(pg.count), std::to_string(n)});
    CheckResult one;
    one.max_abs_err = std::fabs(static_cast<double>(n - pg.count));
    one.max_rel_err = one.max_abs_err / std::max<double>(1.0, static_cast<double>(pg.count));
    one.passed = n == pg.count;
    merge(groups, one);
  }
  const std::int64_t N = param_count(cfg);
  g.add({"total N", "", std::to_string(N), std::to_string(reg.numel())});
  ctx.show(g);
  ctx.check(groups);
  check_number(ctx, "total parameters N == formula", static_cast<double>(reg.numel()), static_cast<double>(N), 0.0);

  const ModelConfig big = config_124m();
  const double nb = static_cast<double>(param_count(big));
  ctx.narrator.say(
      "N = " + std::to_string(N) + " parameters = " + human_bytes(4.0 * N) + " in fp32. For scale, the same "
      "formula at V 32000, C 768, F 2048, L 12, H 12, Hkv 4 (the '124M' of bench_step) gives N = " +
      fmt("%.1f", nb / 1e6) + "M: " + human_bytes(4 * nb) + " of weights, and 16N = " + human_bytes(16 * nb) +
      " with gradients and AdamW's two moments (step 6).\nThe embedding and lm_head are " +
      fmt("%.0f", 100.0 * 2 * big.vocab * big.dim / nb) + "% of it: small models are mostly vocabulary.");
}

}  // namespace fivefold::ch01
