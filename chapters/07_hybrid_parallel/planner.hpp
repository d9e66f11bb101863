// SPDX-License-Identifier: MIT
/// @file planner.hpp
/// @brief The layout planner: every valid layout (tp, sp, ep, dp, pp, ZeRO stage, microbatches m,
/// interleave v, order) of a model on a cluster, its memory per GPU, its bytes per step inside and
/// across nodes, its pipeline bubble and a predicted step time, ranked (`ch07_plan`,
/// docs/reference.md, "Chapter 07 planner (ch07_plan)").
///
/// Two kinds of numbers live here:
/// - exact counts for our runs, to be compared with a run to the element and the byte:
///   rank_param_elements() (the parameters a rank holds) and rank_group_bytes() (the payload bytes
///   a rank hands to each group per step, counted as backends/communicator.hpp counts them);
/// - estimates for real systems under a stated cost model: predict() and plan_layouts()
///   (precision, Korthikanti et al.'s activation formula, ring collectives, nothing overlapped).
///
/// Notation: L layers (M of them MoE), C model dim, F SwiGLU hidden (each expert too), V
/// vocabulary, H and Hkv heads, hd = C/H, E experts, k per token, T sequence, B global batch.
/// A rank holds b = B/(dp*ep) sequences per step, in m microbatches of B/(dp*ep*m), and T/sp
/// positions of each. What it leaves out: activation recomputation, Megatron's scatter-gather of
/// stage-boundary messages, uneven layer splits with interleaving, expert tensor parallelism,
/// and any overlap of communication with compute.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/model_config.hpp"
#include "common/process_grid.hpp"

namespace fivefold::ch07 {

/// The number formats the memory and traffic estimates assume.
enum class Precision {
  fp32,        ///< our runs: 4 B weights, 4 B gradients, 8 B Adam (m, v), 4 B activations
  bf16_mixed,  ///< Megatron mixed precision: 2 B weights + 2 B gradients + 12 B fp32 master, m, v
};

/// Bytes per parameter of each part of the training state, and per activation element.
struct PrecisionBytes {
  double weight = 4;      ///< per parameter (bf16 copy in bf16-mixed)
  double grad = 4;        ///< per parameter; also what the gradient reduction sends per element
  double optimizer = 8;   ///< Adam m and v (plus the fp32 master weights in bf16-mixed)
  double activation = 4;  ///< per saved activation element and per element of an activation message
};

/// The bytes of @p p: fp32 {4, 4, 8, 4}; bf16-mixed {2, 2, 12, 2}.
PrecisionBytes precision_bytes(Precision p);
/// "fp32" or "bf16-mixed".
const char* precision_name(Precision p);
/// The precision called @p name; throws UsageError naming it and the accepted names.
Precision parse_precision(const std::string& name);

/// One candidate layout: the five degrees and how the step runs on them.
struct PlanLayout {
  int tp = 1;  ///< tensor-parallel degree (chapter 03)
  int sp = 1;  ///< sequence/context-parallel degree: ring attention over T/sp positions (chapter 05)
  int ep = 1;  ///< expert-parallel degree: E/ep whole experts per rank (chapter 06)
  int dp = 1;  ///< data-parallel degree (chapter 02)
  int pp = 1;  ///< pipeline stages (chapter 04)
  int zero = 0;  ///< ZeRO stage 0..3: shards optimizer states (1), + gradients (2), + weights (3)
  int m = 1;     ///< microbatches per step of each pipeline (gradient accumulation when pp = 1)
  int v = 1;     ///< chunks per pipeline rank: 1 = 1F1B, > 1 = Megatron's interleaved 1F1B
  bool megatron_sp = false;  ///< tp's norms and residuals split along T (Korthikanti et al.)
  std::string order = kDefaultOrder;  ///< the grid's --order, fastest axis first
  /// Ranks the layout needs: tp*sp*ep*dp*pp.
  int world() const { return tp * sp * ep * dp * pp; }
  /// "tp 2 sp 1 ep 1 dp 4 pp 8 zero 1 m 32 v 1 tp-sp-ep-dp-pp".
  std::string describe() const;
};

/// The machines: identical nodes of identical GPUs.
struct PlanCluster {
  int nodes = 8;              ///< --nodes
  int gpus_per_node = 8;      ///< --gpus-per-node (node of rank r = r / gpus_per_node)
  double mem_gib = 80;        ///< --mem-gib: memory per GPU
  double bw_intra_gbs = 400;  ///< --bw-intra-gbs: GB/s one GPU sends inside its node (achieved)
  double bw_inter_gbs = 50;   ///< --bw-inter-gbs: GB/s one GPU sends to other nodes (achieved)
  double tflops = 400;        ///< --tflops: sustained TFLOP/s per GPU on the model's matmuls
  /// All GPUs: nodes * gpus_per_node.
  int gpus() const { return nodes * gpus_per_node; }
};

/// What the enumeration tries, and the switches of the rules.
struct PlanLimits {
  int max_tp = 8;   ///< largest tp tried
  int max_sp = 8;   ///< largest sp tried
  int max_ep = 64;  ///< largest ep tried
  int max_pp = 16;  ///< largest pp tried
  int max_v = 4;    ///< largest interleave tried
  std::vector<int> zero = {0, 1, 2, 3};  ///< ZeRO stages tried
  std::vector<std::string> orders = {"tp-sp-ep-dp-pp", "tp-sp-ep-pp-dp"};  ///< orders tried
  bool zigzag = true;       ///< sp splits T into 2*sp chunks (chapter 05's zigzag): T % (2 sp) == 0
  bool megatron_sp = true;  ///< layouts with tp > 1 use Megatron-SP (false: never; MoE then needs tp 1)
};

/// The switches of the cost model.
struct PlanCostModel {
  Precision precision = Precision::bf16_mixed;  ///< bytes per parameter and per activation
  bool flash_attention = false;  ///< drop the 5as/h term: the T x T scores are not kept
};

/// Why @p l cannot run @p cfg, as one line "rule: value and fix", or "" when it can. Rules:
/// degrees, zero, m, v >= 1 and zero <= 3; H, Hkv, F, V % tp (whole heads, vocab-parallel);
/// T % sp (T % 2sp with @p lim.zigzag); E % ep, ep > 1 only with experts; ZeRO-2/3 only with
/// pp 1 (DeepSpeed); pp*v <= L; interleaving (v > 1) needs pp > 1, L % (pp v) and m % pp;
/// B % (dp ep m); MoE with tp > 1 needs Megatron-SP (Megatron), which needs (T/sp) % tp.
std::string layout_problem(const ModelConfig& cfg, const PlanLayout& l, const PlanLimits& lim = {});

/// Parameter elements one rank holds (before any ZeRO sharding). EXACT: equal to the elements
/// of the shards the rank registers.
struct HeldParams {
  std::int64_t sharded = 0;     ///< split over tp: embed_tokens, q/k/v/o, dense gate/up/down, lm_head
  std::int64_t replicated = 0;  ///< whole on every tp rank: the RMSNorm gains and the MoE routers
  std::int64_t expert = 0;      ///< its E/ep whole experts per MoE layer (not split by tp)
  /// Non-expert elements (their gradients are summed over ep too).
  std::int64_t dense() const { return sharded + replicated; }
  /// Everything the rank holds.
  std::int64_t total() const { return sharded + replicated + expert; }
};

/// The parameters of pipeline rank @p stage (0..pp-1) of @p l, any tp/ep/dp/sp coordinate: the
/// layers of its chunks ch04::rank_chunks(L, pp, v, stage); embed_tokens [V, C] on the rank of
/// layer 0, norm [C] and lm_head [V, C] on the rank of layer L-1. Chapter 03's split: embed,
/// lm_head, q, k, v, gate, up by rows (V/tp, H hd/tp, ...), o, down by columns, norms whole; a
/// MoE layer's router [E, C] whole and E/ep experts of 3 x [F, C] each. Needs layout_problem()
/// == "" for the tp, ep, pp, v part.
HeldParams rank_param_elements(const ModelConfig& cfg, const PlanLayout& l, int stage);

/// One line of a rank's traffic: what it hands to one group's calls of one op per step.
struct GroupTraffic {
  std::string group;        ///< the communicator's name: "tp", "sp", "ep", "dp", "pp"
  std::string op;           ///< the counted op: "all_reduce", "isend"
  std::int64_t calls = 0;   ///< calls per optimizer step
  std::int64_t bytes = 0;   ///< payload bytes per step (backends/communicator.hpp's counting)
  std::string formula;      ///< how bytes is computed, in the file comment's notation
};

/// EXACT payload bytes pipeline rank @p stage of @p l hands to each group per optimizer step in
/// our runs (fp32, ZeRO 0, no Megatron-SP; m and v as given). Rows only for groups of
/// more than one rank with something to send. With n = (b/m)(T/sp) tokens per microbatch:
/// - tp all_reduce (chapter 03, per microbatch): 2 per layer forward and 2 backward of [n, C];
///   the first stage the embedding's forward [n, C]; the last the head's backward [n, C] and the
///   loss's 3 of [n];
/// - sp isend (chapter 05's ring, per microbatch and layer): forward 2(sp-1) blocks, backward
///   4 sp - 2 blocks, each [b/m, T/sp, Hkv/tp, hd];
/// - pp isend (chapter 04): per microbatch, [b/m, T/sp, C] forward from every chunk but the model's
///   last, and its gradient back from every chunk but the first;
/// - dp, sp, ep all_reduce (nn::SummedUpdate, one packed call per group): dp and sp every
///   gradient of the rank, ep the dense ones. (Where the chapter's run uses chapter 02's buckets
///   over dp instead, the same bytes go as "iall_reduce", one call per bucket.)
/// Throws UsageError for what it does not count: MoE layers with tp > 1, Megatron-SP, ZeRO > 0.
/// Left out: the ep all-to-alls (their bytes follow the routing; chapter 06 counts them).
std::vector<GroupTraffic> rank_group_bytes(const ModelConfig& cfg, const PlanLayout& l, int stage);

/// The pipeline bubble (idle share at equal stage times): (p-1) / (v m + p-1); 0 when p = 1.
double pipeline_bubble(int p, int m, int v);

/// Activation bytes of ONE layer for ONE microbatch on one rank (Korthikanti et al. 2022, no
/// recompute, 16-bit): s b h (34 + 5 a s / h) / tp with Megatron-SP (or tp = 1), s b h (10 +
/// 24/tp + 5 a s / (h tp)) without; s = T/sp, b = B/(dp ep m), h = C, a = H. flash_attention drops
/// the 5 a s / h term; fp32 doubles every term. Dense and MoE layers alike.
double layer_activation_bytes(const ModelConfig& cfg, const PlanLayout& l, const PlanCostModel& cost);

/// (layer, microbatch) pairs pipeline rank @p stage holds at its peak: 1F1B min(p-stage, m) times
/// its layers; interleaved ch04::peak_passes_formula's chunk passes times L/(v p) layers. Stage 0
/// with m >= p: L (1F1B) and L (1 + (p-1)/(p v)) (Megatron's interleaving factor).
double stage_layer_microbatches(const ModelConfig& cfg, const PlanLayout& l, int stage);

/// Memory of one GPU of a pipeline stage, in bytes.
struct StageMemory {
  double weights = 0;      ///< held parameters x bytes; / replicas with ZeRO-3
  double grads = 0;        ///< x bytes; / replicas with ZeRO-2, 3
  double optimizer = 0;    ///< x bytes; / replicas with ZeRO-1, 2, 3
  double activations = 0;  ///< stage_layer_microbatches x layer_activation_bytes (+ logits on the last)
  /// The sum of the four parts.
  double total() const { return weights + grads + optimizer + activations; }
};

/// StageMemory of pipeline rank @p stage. ZeRO shards a dense parameter over its dp*sp*ep
/// replicas and an expert over its dp*sp replicas. The last stage adds fp32 logits of one
/// microbatch, 4 s b V / tp.
StageMemory stage_memory(const ModelConfig& cfg, const PlanLayout& l, const PlanCostModel& cost, int stage);

/// Bytes one GPU of a stage SENDS per step (ring algorithms), by link class.
struct StageTraffic {
  double intra = 0;  ///< to GPUs of its own node
  double inter = 0;  ///< to other nodes
};

/// Wire bytes of pipeline rank @p stage per step, in the precision's bytes (docs/reference.md,
/// "Chapter 07 planner (ch07_plan)", derives them): tp 2(tp-1)/tp per all-reduce-sized
/// exchange; sp ring (6 sp - 4) blocks per layer; ep 4 (ep-1)/ep k tokens per MoE layer;
/// gradients 2(n-1)/n P (ZeRO 0), (n-1)/n P (grad + weight) (1, 2), one more weight all-gather
/// (3); pp one activation per microbatch and chunk each way. An axis's bytes are inter-node when
/// any of its groups spans nodes (the ring's slowest link sets the pace); a pipeline send is
/// inter-node when any rank of the stage has that neighbour on another node.
StageTraffic stage_traffic(const ModelConfig& cfg, const PlanLayout& l, const PlanCluster& cl,
                           const PlanCostModel& cost, int stage);

/// The prediction for one layout (the worst stage of each kind).
struct PlanRow {
  PlanLayout layout;       ///< the layout
  int memory_stage = 0;    ///< the stage with the most memory
  StageMemory memory;      ///< its memory
  StageTraffic traffic;    ///< the bytes of the stage with the longest communication time
  double bubble = 0;       ///< pipeline_bubble(pp, m, v)
  double compute_s = 0;    ///< FLOPs per GPU / TFLOP/s (slowest stage's share)
  double comm_s = 0;       ///< intra / bw_intra + inter / bw_inter of that stage
  double time_s = 0;       ///< compute_s / (1 - bubble) + comm_s
  bool fits = false;       ///< memory.total() <= mem_gib GiB
};

/// The prediction for @p l (valid, world = cl.gpus()). Compute = chapter 01's training FLOPs
/// (6 x matmul params per token + 12 L T C) x B T / GPUs, times the slowest stage's layers over
/// L/pp.
PlanRow predict(const ModelConfig& cfg, const PlanLayout& l, const PlanCluster& cl, const PlanCostModel& cost);

/// The outcome of an enumeration.
struct PlanResult {
  std::vector<PlanRow> rows;                ///< valid layouts, best first (fits, then time, memory)
  long long tried = 0;                      ///< layouts enumerated
  std::map<std::string, long long> rejected;  ///< rule (the text before ':') -> layouts it rejected
  long long same_as_earlier_order = 0;      ///< valid, but the same bytes per link as an earlier order
};

/// Every layout of cl.gpus() ranks within @p lim: tp, sp, ep, pp up to their limits (dp fills the
/// world; ep 1 for a dense model), each ZeRO stage of @p lim (only 0 when dp*sp*ep = 1: nothing
/// to shard over), m every divisor of B/(dp ep), v 1..max_v, each order of @p lim (one whose
/// intra and inter bytes equal an earlier order's is counted, not kept); Megatron-SP whenever
/// tp > 1 (when allowed). Valid ones predicted and ranked.
PlanResult plan_layouts(const ModelConfig& cfg, const PlanCluster& cl, const PlanLimits& lim,
                        const PlanCostModel& cost);

}  // namespace fivefold::ch07
