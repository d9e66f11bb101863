// SPDX-License-Identifier: MIT
// ch07_plan: the layout planner (planner.hpp) as a tool. From a model, a cluster and limits it
// prints the assumptions of its cost model, then every valid layout ranked by predicted step time
// with its memory per GPU, bytes per step inside and across nodes, bubble and whether it fits.
// Arithmetic only: it starts no MPI and trains nothing (docs/reference.md, "Chapter 07 planner").
// Run: build/cpu/bin/ch07_plan                       (the 7B Llama on 8 nodes x 8 GPUs of 80 GiB)
//      build/cpu/bin/ch07_plan --example             (the 7B and the 70B Llama on the same cluster)
//      build/cpu/bin/ch07_plan --model llama-70b --nodes 16 --top 20 --json /tmp/plan.json
//      build/cpu/bin/ch07_plan --model tiny --nodes 1 --gpus-per-node 4    (our runs: fp32)
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "chapters/01_reference_model/costs.hpp"
#include "chapters/07_hybrid_parallel/planner.hpp"
#include "common/check.hpp"
#include "common/cli.hpp"

using namespace fivefold;
using namespace fivefold::ch07;
using json = nlohmann::ordered_json;

namespace {

const char* const kDescription =
    "The layout planner of chapter 07: every valid way (tp, sp, ep, dp, pp, ZeRO stage, microbatches m, "
    "interleave v, order) to train a model on a cluster, with its memory per GPU (weights, gradients, optimizer "
    "states, activations), the bytes each GPU sends per step inside and across nodes, the pipeline bubble and a "
    "predicted step time, ranked. The assumptions are printed first. Without arguments: the 7B Llama on 8 nodes of "
    "8 GPUs with 80 GiB. Starts no MPI. Bad input: one 'error:' line, exit status 2.";

/// CLI11 validator for a number > 0, with the fix in its message.
const CLI::Validator kPositiveNumber(
    [](std::string& text) -> std::string {
      try {
        std::size_t used = 0;
        if (std::stod(text, &used) > 0 && used == text.size()) return {};
      } catch (...) {
      }
      return "must be a number > 0 (got '" + text + "')";
    },
    "POSITIVE");

/// The command line.
struct ToolOptions {
  std::string model = "llama-7b";
  std::optional<int> layers, dim, ffn, vocab, heads, kv_heads, experts, topk, moe_every, seq, batch;
  PlanCluster cluster;
  std::optional<double> tflops;
  std::optional<std::string> precision;
  PlanLimits limits;
  std::optional<int> max_tp;
  std::string orders = "tp-sp-ep-dp-pp,tp-sp-ep-pp-dp";
  bool flash = false, no_megatron_sp = false, ring = false, example = false;
  int top = 10;
  std::string json;
};

ModelConfig preset(const std::string& name) {
  ModelConfig c;  // "tiny": the defaults of our runs
  if (name == "llama-7b" || name == "llama-70b") {
    const bool big = name == "llama-70b";  // Llama 2's shapes; B 1024 x 4096 = 4.2M tokens, its batch
    c.layers = big ? 80 : 32, c.dim = big ? 8192 : 4096, c.ffn = big ? 28672 : 11008, c.vocab = 32000;
    c.heads = big ? 64 : 32, c.kv_heads = big ? 8 : 32, c.seq = 4096, c.batch = 1024;
  } else {
    FIVEFOLD_USAGE_CHECK(name == "tiny", "--model ", name, " is not a preset; use llama-7b, llama-70b or tiny "
                         "(and --layers --dim ... to change it)");
  }
  return c;
}

ModelConfig model_of(const ToolOptions& o, const std::string& name) {
  ModelConfig c = preset(name);
  const std::pair<const std::optional<int>*, int*> given[] = {
      {&o.layers, &c.layers}, {&o.dim, &c.dim}, {&o.ffn, &c.ffn}, {&o.vocab, &c.vocab}, {&o.heads, &c.heads},
      {&o.kv_heads, &c.kv_heads}, {&o.experts, &c.experts}, {&o.topk, &c.topk}, {&o.moe_every, &c.moe_every},
      {&o.seq, &c.seq}, {&o.batch, &c.batch}};
  for (const auto& [opt, field] : given)
    if (opt->has_value()) *field = **opt;
  c.validate();  // one UsageError line naming the option
  return c;
}

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

/// The cost model in words, label -> text (printed and written to --json).
std::vector<std::pair<std::string, std::string>> assumptions(const ModelConfig& c, const PlanCluster& cl,
                                                             const PlanLimits& lim, const PlanCostModel& cost) {
  const PrecisionBytes pb = precision_bytes(cost.precision);
  std::string moe = c.experts > 0 ? "E " + std::to_string(c.experts) + ", k " + std::to_string(c.topk) +
                                        ", MoE every " + std::to_string(c.moe_every) + " layer(s)"
                                  : std::string("dense");
  std::string orders;
  for (const std::string& o : lim.orders) orders += (orders.empty() ? "" : ", ") + o;
  std::string zeros;
  for (int z : lim.zero) zeros += (zeros.empty() ? "" : " ") + std::to_string(z);
  return {
      {"model", "L " + std::to_string(c.layers) + ", C " + std::to_string(c.dim) + ", F " + std::to_string(c.ffn) +
                    ", V " + std::to_string(c.vocab) + ", H " + std::to_string(c.heads) + ", Hkv " +
                    std::to_string(c.kv_heads) + ", " + moe + "; T " + std::to_string(c.seq) + ", B " +
                    std::to_string(c.batch) + " sequences (" + fmt("%.2fM", 1e-6 * c.batch * c.seq) +
                    " tokens) per step; " + std::to_string(ch01::param_count(c)) + " parameters (" +
                    fmt("%.4g", static_cast<double>(ch01::param_count(c))) + ")"},
      {"cluster", std::to_string(cl.nodes) + " nodes x " + std::to_string(cl.gpus_per_node) + " GPUs, " +
                      fmt("%g", cl.mem_gib) + " GiB each; " + fmt("%g", cl.bw_intra_gbs) +
                      " GB/s per GPU inside a node, " +
                      fmt("%g", cl.bw_inter_gbs) + " GB/s across nodes (achieved, one direction); " +
                      fmt("%g", cl.tflops) + " TFLOP/s sustained per GPU"},
      {"precision", cost.precision == Precision::bf16_mixed
                        ? "bf16-mixed: 2 B weights + 2 B gradients + 12 B fp32 master weights and Adam m, v = 16 B per "
                          "parameter (Megatron's mixed precision); activations and messages 2 B"
                        : "fp32 as in our runs: 4 B weights + 4 B gradients + 8 B Adam m, v = 16 B per parameter; "
                          "activations and messages 4 B"},
      {"memory", "per GPU of the stage that needs the most: held parameters x " + fmt("%g", pb.weight) + " / " +
                     fmt("%g", pb.grad) + " / " + fmt("%g", pb.optimizer) +
                     " B; ZeRO-1 shards the optimizer states over the replicas, ZeRO-2 also the gradients, ZeRO-3 "
                     "also the weights (a dense parameter has dp*sp*ep replicas, an expert dp*sp); no workspace, "
                     "no fragmentation"},
      {"activations", std::string("Korthikanti et al. 2022, no recompute: s b h (34 + 5 a s / h) / tp bytes per layer "
                                  "and microbatch in 16-bit with Megatron-SP, s b h (10 + 24/tp + 5 a s/(h tp)) "
                                  "without; s = T/sp, b = B/(dp ep m), a = H; MoE layers as dense") +
                          (cost.flash_attention ? "; --flash-attention: the 5 a s / h term dropped" : "") +
                          (cost.precision == Precision::fp32 ? "; x2 in fp32" : "") +
                          "; times the (layer, microbatch) pairs in flight: 1F1B min(p - stage, m) x its layers, "
                          "interleaved L (1 + (p-1)/(p v)) on stage 0; + fp32 logits 4 s b V / tp on the last stage"},
      {"bytes", "sent per GPU per step (ring algorithms), N = B T / (dp ep sp): tp 2(tp-1)/tp [N, C] x (4 per dense "
                "layer, 2 per MoE layer, embedding, head); sp ring (6 sp - 4) K/V blocks per layer; ep "
                "4 (ep-1)/ep k [N, C] per MoE layer; gradients 2(n-1)/n P (ZeRO-0), (n-1)/n P (gradient + weight "
                "bytes) (ZeRO-1/2), one more weight all-gather (ZeRO-3); pp [N, C] each way per chunk (/tp with "
                "Megatron-SP); a group spanning nodes sends all its bytes at the inter-node bandwidth"},
      {"time", "compute / (1 - bubble) + intra / bw_intra + inter / bw_inter (the stage with the most), every byte "
               "exposed (no overlap); compute = (6 x matmul params per token + 12 L T C) FLOPs per token (chapter 01) "
               "x B T / GPUs / TFLOP/s x the slowest stage's share of layers; bubble (p-1)/(v m + p-1)"},
      {"rules", std::string("H, Hkv, F, V % tp; ") + (lim.zigzag ? "T % 2sp (zigzag)" : "T % sp") +
                    "; E % ep; ZeRO-2/3 only with pp 1 (DeepSpeed); pp v <= L; interleaving: L % (pp v), m % pp; "
                    "B % (dp ep m); MoE with tp > 1 needs Megatron-SP" +
                    (lim.megatron_sp ? "; Megatron-SP on whenever tp > 1" : "; Megatron-SP off")},
      {"limits", "tp <= " + std::to_string(lim.max_tp) + ", sp <= " + std::to_string(lim.max_sp) + ", ep <= " +
                     std::to_string(lim.max_ep) + ", pp <= " + std::to_string(lim.max_pp) + ", v <= " +
                     std::to_string(lim.max_v) + "; zero " + zeros + "; orders " + orders +
                     "; m every divisor of B/(dp ep); dp fills the " + std::to_string(cl.gpus()) + " GPUs"},
  };
}

/// Prints @p text after a label, wrapped at 110 columns with a hanging indent.
void print_wrapped(const std::string& label, const std::string& text) {
  const std::size_t indent = 13, width = 110;
  std::string line = label;
  line.resize(std::max(indent, label.size() + 1), ' ');
  bool empty = true;
  std::istringstream words(text);
  for (std::string w; words >> w;) {
    if (!empty && line.size() + 1 + w.size() > width) {
      std::cout << line << "\n";
      line.assign(indent, ' ');
      empty = true;
    }
    line += (empty ? "" : " ") + w;
    empty = false;
  }
  std::cout << line << "\n";
}

/// A unit for a column: the largest of @p units (value, name; largest first) that the column's
/// largest entry @p most reaches, else the smallest.
std::pair<double, std::string> unit_for(double most, const std::vector<std::pair<double, std::string>>& units) {
  for (const auto& u : units)
    if (most >= u.first) return u;
  return units.back();
}

json row_json(int rank, const PlanRow& r) {
  const PlanLayout& l = r.layout;
  const double gib = 1024.0 * 1024.0 * 1024.0;
  return {{"rank", rank}, {"tp", l.tp}, {"sp", l.sp}, {"ep", l.ep}, {"dp", l.dp}, {"pp", l.pp}, {"zero", l.zero},
          {"m", l.m}, {"v", l.v}, {"order", l.order}, {"megatron_sp", l.megatron_sp},
          {"memory_stage", r.memory_stage},
          {"memory_gib", {{"weights", r.memory.weights / gib}, {"grads", r.memory.grads / gib},
                          {"optimizer", r.memory.optimizer / gib}, {"activations", r.memory.activations / gib},
                          {"total", r.memory.total() / gib}}},
          {"bytes_per_step", {{"intra", r.traffic.intra}, {"inter", r.traffic.inter}}},
          {"bubble", r.bubble}, {"compute_s", r.compute_s}, {"comm_s", r.comm_s}, {"time_s", r.time_s},
          {"fits", r.fits}};
}

/// Plans @p cfg, prints the assumptions and the table, returns the plan as JSON.
json plan_and_print(const std::string& name, const ModelConfig& cfg, const PlanCluster& cl, const PlanLimits& lim,
                    const PlanCostModel& cost, int top) {
  const PlanResult res = plan_layouts(cfg, cl, lim, cost);
  long long fit = 0;
  for (const PlanRow& r : res.rows) fit += r.fits ? 1 : 0;
  std::string rejected;
  for (const auto& [rule, count] : res.rejected)
    rejected += (rejected.empty() ? "" : ", ") + std::to_string(count) + " " + rule;
  if (res.rows.empty())
    throw UsageError("no layout of " + std::to_string(cl.gpus()) + " GPUs is valid for " + name + " (rejected: " +
                     rejected + "); change the model, --nodes/--gpus-per-node or the --max-* limits");
  std::cout << "ch07_plan: " << name << " on " << cl.nodes << " x " << cl.gpus_per_node << " GPUs, ranked by "
            << "predicted step time (a cost model, not a measurement)\n";
  const auto said = assumptions(cfg, cl, lim, cost);
  for (const auto& [label, text] : said) print_wrapped(label, text);
  print_wrapped("layouts", std::to_string(res.tried) + " tried, " + std::to_string(res.rows.size()) + " valid, " +
                               std::to_string(fit) + " fit in " + fmt("%g", cl.mem_gib) + " GiB; " +
                               std::to_string(res.same_as_earlier_order) + " more valid with the same bytes per "
                               "link as an earlier order (not shown); rejected: " +
                               (rejected.empty() ? "none" : rejected));
  const std::size_t n = top == 0 ? res.rows.size() : std::min<std::size_t>(top, res.rows.size());
  double most_mem = 0, most_bytes = 0, most_time = 0;  // units that suit the rows shown
  for (std::size_t i = 0; i < n; ++i) {
    most_mem = std::max(most_mem, res.rows[i].memory.total());
    most_bytes = std::max({most_bytes, res.rows[i].traffic.intra, res.rows[i].traffic.inter});
    most_time = std::max(most_time, res.rows[i].time_s);
  }
  const auto mu = unit_for(most_mem, {{1024.0 * 1024 * 1024, "GiB"}, {1024.0 * 1024, "MiB"}, {1024.0, "KiB"}});
  const auto bu = unit_for(most_bytes, {{1e9, "GB"}, {1e6, "MB"}, {1e3, "kB"}});
  const auto tu = unit_for(most_time, {{1.0, "s"}, {1e-3, "ms"}, {1e-6, "us"}});
  std::printf("\n%4s %3s %3s %3s %4s %3s %4s %5s %2s %-15s| %7s %6s %6s %6s %6s %-3s | %7s %7s %-2s | %6s | %7s | %s\n",
              "#", "tp", "sp", "ep", "dp", "pp", "zero", "m", "v", "order", "weights", "grads", "opt", "acts",
              "total", mu.second.c_str(), "intra", "inter", bu.second.c_str(), "bubble",
              ("time " + tu.second).c_str(), "fits");
  json rows = json::array();
  for (std::size_t i = 0; i < n; ++i) {
    const PlanRow& r = res.rows[i];
    const PlanLayout& l = r.layout;
    const double g = mu.first;
    std::printf("%4zu %3d %3d %3d %4d %3d %4d %5d %2d %-15s| %7.1f %6.1f %6.1f %6.1f %6.1f     | %7.1f %7.1f    | "
                "%5.1f%% | %7.2f | %s\n",
                i + 1, l.tp, l.sp, l.ep, l.dp, l.pp, l.zero, l.m, l.v, l.order.c_str(), r.memory.weights / g,
                r.memory.grads / g, r.memory.optimizer / g, r.memory.activations / g, r.memory.total() / g,
                r.traffic.intra / bu.first, r.traffic.inter / bu.first, 100 * r.bubble, r.time_s / tu.first,
                r.fits ? "yes" : "NO");
    rows.push_back(row_json(static_cast<int>(i) + 1, r));
  }
  if (fit == 0) std::cout << "No layout fits in " << cl.mem_gib << " GiB per GPU: more GPUs, --flash-attention, or a "
                          << "smaller batch per microbatch would help.\n";
  json a = json::object();
  for (const auto& [label, text] : said) a[label] = text;
  json rej = json::object();
  for (const auto& [rule, cnt] : res.rejected) rej[rule] = cnt;
  return {{"model_name", name}, {"model", cfg.to_json()}, {"parameters", ch01::param_count(cfg)},
          {"cluster", {{"nodes", cl.nodes}, {"gpus_per_node", cl.gpus_per_node}, {"mem_gib", cl.mem_gib},
                       {"bw_intra_gbs", cl.bw_intra_gbs}, {"bw_inter_gbs", cl.bw_inter_gbs}, {"tflops", cl.tflops}}},
          {"precision", precision_name(cost.precision)}, {"flash_attention", cost.flash_attention},
          {"assumptions", a}, {"tried", res.tried}, {"valid", res.rows.size()}, {"fit", fit},
          {"same_as_earlier_order", res.same_as_earlier_order}, {"rejected", rej},
          {"rows", rows}};
}

void add_options(CLI::App& app, ToolOptions& o) {
  app.add_option("--model", o.model, "preset: llama-7b, llama-70b (Llama 2's shapes, T 4096, B 1024) or tiny (our "
                                     "runs' defaults); the options below change it")->capture_default_str();
  app.add_option("--layers", o.layers, "L")->check(kPositive);
  app.add_option("--dim", o.dim, "C")->check(kPositive);
  app.add_option("--ffn", o.ffn, "F (dense MLP and each expert)")->check(kPositive);
  app.add_option("--vocab", o.vocab, "V")->check(kPositive);
  app.add_option("--heads", o.heads, "H")->check(kPositive);
  app.add_option("--kv-heads", o.kv_heads, "Hkv")->check(kPositive);
  app.add_option("--experts", o.experts, "E (0 = dense)")->check(kNonNegative);
  app.add_option("--topk", o.topk, "k")->check(kPositive);
  app.add_option("--moe-every", o.moe_every, "MoE layers: l % N == N-1")->check(kPositive);
  app.add_option("--seq", o.seq, "T")->check(kPositive);
  app.add_option("--batch", o.batch, "B, global batch in sequences")->check(kPositive);
  app.add_option("--nodes", o.cluster.nodes, "nodes")->check(kPositive)->capture_default_str();
  app.add_option("--gpus-per-node", o.cluster.gpus_per_node, "GPUs per node")->check(kPositive)->capture_default_str();
  app.add_option("--mem-gib", o.cluster.mem_gib, "memory per GPU, GiB")->check(kPositiveNumber)->capture_default_str();
  app.add_option("--bw-intra-gbs", o.cluster.bw_intra_gbs, "GB/s a GPU sends inside its node")
      ->check(kPositiveNumber)->capture_default_str();
  app.add_option("--bw-inter-gbs", o.cluster.bw_inter_gbs, "GB/s a GPU sends to other nodes")
      ->check(kPositiveNumber)->capture_default_str();
  app.add_option("--tflops", o.tflops, "sustained TFLOP/s per GPU (default 400 bf16-mixed, 50 fp32)")
      ->check(kPositiveNumber);
  app.add_option("--precision", o.precision, "fp32 or bf16-mixed (default bf16-mixed for the Llamas, fp32 for tiny)");
  app.add_flag("--flash-attention", o.flash, "activations without the T x T scores (drop 5 a s / h)");
  app.add_flag("--no-megatron-sp", o.no_megatron_sp, "never split tp's norms and residuals along T");
  app.add_flag("--ring", o.ring, "sp splits T into sp blocks (T % sp) instead of 2 sp zigzag chunks");
  app.add_option("--max-tp", o.max_tp, "largest tp tried (default: --gpus-per-node)")->check(kPositive);
  app.add_option("--max-sp", o.limits.max_sp, "largest sp tried")->check(kPositive)->capture_default_str();
  app.add_option("--max-ep", o.limits.max_ep, "largest ep tried")->check(kPositive)->capture_default_str();
  app.add_option("--max-pp", o.limits.max_pp, "largest pp tried")->check(kPositive)->capture_default_str();
  app.add_option("--max-v", o.limits.max_v, "largest interleave tried")->check(kPositive)->capture_default_str();
  app.add_option("--orders", o.orders, "orders tried, comma separated")->capture_default_str();
  app.add_option("--top", o.top, "rows printed (0 = all)")->check(kNonNegative)->capture_default_str();
  app.add_option("--json", o.json, "write the table and the assumptions as JSON to FILE");
  app.add_flag("--example", o.example, "plan the 7B and the 70B Llama (B 1024 x 4096) on the cluster; no run");
  app.footer("Model sizes not given are the preset's. Examples:\n"
             "  ch07_plan --example\n"
             "  ch07_plan --model llama-70b --nodes 16 --flash-attention --top 20 --json /tmp/plan.json\n"
             "  ch07_plan --model tiny --nodes 1 --gpus-per-node 4      (our runs: fp32)\n"
             "docs/reference.md, \"Chapter 07 planner (ch07_plan)\", states the cost model.");
}

int run(int argc, char** argv) {
  ToolOptions o;
  Cli cli("ch07_plan", kDescription);
  add_options(cli.app(), o);
  if (auto status = cli.parse(argc, argv, true)) return *status;
  const CLI::App& app = cli.app();
  bool changed = false;  // a preset with some of its sizes given on the command line
  for (const char* opt : {"--layers", "--dim", "--ffn", "--vocab", "--heads", "--kv-heads", "--experts", "--topk",
                          "--moe-every", "--seq", "--batch"})
    changed = changed || app.count(opt) > 0;
  const bool model_named = changed || app.count("--model") > 0;
  FIVEFOLD_USAGE_CHECK(!o.example || !model_named, "--example plans the fixed 7B and 70B Llamas; drop --model and "
                       "the model options, or drop --example");
  o.limits.max_tp = o.max_tp.value_or(o.cluster.gpus_per_node);
  o.limits.zigzag = !o.ring;
  o.limits.megatron_sp = !o.no_megatron_sp;
  o.limits.orders.clear();
  std::stringstream list(o.orders);
  for (std::string order; std::getline(list, order, ',');) {
    parse_order(order);  // one UsageError line naming a bad axis
    o.limits.orders.push_back(order);
  }
  FIVEFOLD_USAGE_CHECK(!o.limits.orders.empty(), "--orders is empty; pass e.g. tp-sp-ep-dp-pp");
  std::ofstream json_file;
  if (!o.json.empty()) {  // before any output: a bad path is one error line, not a table and an error
    json_file.open(o.json);
    FIVEFOLD_USAGE_CHECK(json_file.good(), "--json ", o.json, " cannot be written; pass a writable path, e.g. "
                         "/tmp/plan.json");
  }

  const std::vector<std::string> names = o.example ? std::vector<std::string>{"llama-7b", "llama-70b"}
                                                   : std::vector<std::string>{o.model};
  json plans = json::array();
  for (std::size_t i = 0; i < names.size(); ++i) {
    const ModelConfig cfg = model_of(o, names[i]);
    PlanCostModel cost;
    cost.precision = o.precision ? parse_precision(*o.precision)
                                 : (names[i] == "tiny" ? Precision::fp32 : Precision::bf16_mixed);
    cost.flash_attention = o.flash;
    PlanCluster cl = o.cluster;
    cl.tflops = o.tflops.value_or(cost.precision == Precision::fp32 ? 50.0 : 400.0);
    if (i > 0) std::cout << "\n";
    plans.push_back(plan_and_print(names[i] + (changed ? " (changed)" : ""), cfg, cl, o.limits, cost, o.top));
  }
  if (json_file.is_open()) json_file << (o.example ? json{{"plans", plans}} : plans[0]).dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
