// SPDX-License-Identifier: MIT
// Step 4: attention split by heads. Rank r owns query heads r*H/tp .. and kv heads r*Hkv/tp ..
// (the rows of q/k/v_proj that produce them: column-parallel), applies RoPE and the causal
// softmax to its heads alone, and multiplies by its columns of o_proj (row-parallel): a partial
// of the output, summed by one all-reduce. GQA survives: query head h reads kv head h/(H/Hkv),
// which lives on the same rank whenever tp divides Hkv. The degrees the model allows are listed,
// and an indivisible one is shown being rejected.
// Run: mpirun -np 4 build/cpu/bin/ch03_tensor_parallel --step 4 --heads 8 --kv-heads 4
#include "chapters/03_tensor_parallel/steps.hpp"
#include "common/check.hpp"

namespace fivefold::ch03 {

namespace {

/// "a..b" or "a" for the [first, first+count) range.
std::string range_str(int first, int count) {
  return count == 1 ? std::to_string(first) : std::to_string(first) + ".." + std::to_string(first + count - 1);
}

/// The layouts table: every tp up to 2*Hkv (or 8), valid or why not.
void degrees_table(Context& ctx, const ModelConfig& cfg) {
  Table t{"TP degrees for this model (H " + std::to_string(cfg.heads) + ", Hkv " + std::to_string(cfg.kv_heads) +
              ", F " + std::to_string(cfg.ffn) + ", V " + std::to_string(cfg.vocab) + ")",
          {"tp", "q heads/rank", "kv heads/rank", "F/rank", "V/rank", "valid"}, {}};
  const int top = std::max(8, 2 * cfg.kv_heads);
  for (int d = 1; d <= top; ++d) {
    std::string why = "yes";
    try {
      validate_tp(cfg, d, d);
    } catch (const UsageError& e) {
      why = e.what();
      why = "no: " + why.substr(0, why.find(';'));
    }
    auto per = [d](int x) { return x % d == 0 ? std::to_string(x / d) : "-"; };
    t.add({std::to_string(d), per(cfg.heads), per(cfg.kv_heads), per(cfg.ffn), per(cfg.vocab), why});
  }
  ctx.show(t);
}

}  // namespace

void step4_attention(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  Communicator& tp = tp_group(ctx, lab);
  const int n = tp.size(), r = tp.rank();
  const std::int64_t N = static_cast<std::int64_t>(cfg.batch) * cfg.seq, C = cfg.dim;
  const int hl = cfg.heads / n, kl = cfg.kv_heads / n, group = cfg.heads / cfg.kv_heads;
  const std::string p = "layers.0.self_attn";

  nn::Model serial(ctx.ops, cfg);
  nn::AttentionWeights full = nn::attention_weights(serial.params(), p);
  nn::Attention ref(ctx.ops, full, cfg.heads, cfg.kv_heads, cfg.head_dim(), static_cast<float>(cfg.rope_theta));
  TpParams shards(ctx.ops, cfg, r, n);
  nn::Param &q = shards.get(p + ".q_proj.weight"), &k = shards.get(p + ".k_proj.weight"),
            &v = shards.get(p + ".v_proj.weight"), &o = shards.get(p + ".o_proj.weight");
  TpAttention attn(ctx.ops, tp, cfg, {q.value, k.value, v.value, o.value, q.grad, k.grad, v.grad, o.grad});

  ctx.narrator.say("H = " + std::to_string(cfg.heads) + " query heads, Hkv = " + std::to_string(cfg.kv_heads) +
                   " kv heads (" + std::to_string(group) + " query heads per kv head), hd = " +
                   std::to_string(cfg.head_dim()) + ", tp = " + std::to_string(n) + ". What each rank holds:");
  ctx.say_ranks("query heads " + range_str(r * hl, hl) + " -> kv heads " + range_str(r * kl, kl) + "; q_proj " +
                shape_of(q.value) + ", k/v_proj " + shape_of(k.value) + ", o_proj " + shape_of(o.value) +
                "; KV cache per layer [B, S, " + std::to_string(kl) + ", " + std::to_string(cfg.head_dim()) + "]");
  degrees_table(ctx, cfg);
  if (!ctx.narrator.quiet()) {
    for (int bad : {3, cfg.kv_heads * 2}) {
      try {
        validate_tp(cfg, bad, bad);
      } catch (const UsageError& e) {
        ctx.narrator.say("e.g. mpirun -np " + std::to_string(bad) + " ... exits at once with: error: " + e.what());
        break;
      }
    }
  }

  const Tensor a = random_tensor(ctx.ops, lab.o, "step4.a", {cfg.batch, cfg.seq, C});
  const Tensor dy = random_tensor(ctx.ops, lab.o, "step4.dy", {cfg.batch, cfg.seq, C});
  const Tensor pos = nn::positions(ctx.ops, 0, cfg.seq);
  tp.reset_counts();
  const Tensor& y = attn.forward(a, pos);
  record(ctx, tp.counts(), n, "step4 attention forward", "all_reduce", block_cost(N, C));
  ctx.check(compare("attention forward: y == serial", y, ref.forward(a, pos), 1e-5));
  tp.reset_counts();
  const Tensor& da = attn.backward(dy);
  record(ctx, tp.counts(), n, "step4 attention backward", "all_reduce", block_cost(N, C));
  ctx.check(compare("attention backward: da == serial", da, ref.backward(dy), 1e-5));
  CheckResult g = check_shard("attention backward: q/k/v/o shard grads == serial slices", q.grad, full.dq, Split::rows,
                              r, n, 1e-5);
  merge(g, check_shard("", k.grad, full.dk, Split::rows, r, n, 1e-5));
  merge(g, check_shard("", v.grad, full.dv, Split::rows, r, n, 1e-5));
  merge(g, check_shard("", o.grad, full.d_o, Split::cols, r, n, 1e-5));
  ctx.check(g);
  ctx.narrator.say("The softmax is per head, and heads never mix until o_proj: that is why attention splits with\n"
                   "no communication inside it. Same cost as the MLP: one all-reduce of [N, C] each way.");
}

}  // namespace fivefold::ch03
