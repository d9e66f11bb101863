// SPDX-License-Identifier: MIT
// Step 5: the vocabulary split over the TP group. Rank r owns token ids v0 = r*V/tp .. v0+V/tp-1:
// those rows of embed_tokens and of lm_head.
// - Embedding: each rank looks up only its own ids (the others give a zero row); one all-reduce
//   of [N, C] assembles the embedding. Backward: each rank scatter-adds into its own rows.
// - LM head: logits split by columns, [N, V/tp] per rank. The cross-entropy needs, per row, the
//   log-sum-exp over ALL V columns and the target's logit: three all-reduces of N floats (max,
//   sum of exponentials, target logit) instead of gathering N*V logits. Its backward: one
//   all-reduce of dh [N, C].
// Run: mpirun -np 4 build/cpu/bin/ch03_tensor_parallel --step 5
#include "chapters/03_tensor_parallel/steps.hpp"

namespace fivefold::ch03 {

void step5_vocab(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  Communicator& tp = tp_group(ctx, lab);
  const int n = tp.size(), r = tp.rank();
  const std::int64_t N = static_cast<std::int64_t>(cfg.batch) * cfg.seq, C = cfg.dim, V = cfg.vocab;
  const nn::Batch batch = batch_of_step(lab.o, 0);

  nn::Model serial(ctx.ops, cfg);
  TpParams shards(ctx.ops, cfg, r, n);
  nn::Param &emb = shards.get("embed_tokens.weight"), &head = shards.get("lm_head.weight");

  // --- the embedding -------------------------------------------------------------------------
  nn::Embedding emb_ref(ctx.ops, serial.params().get("embed_tokens.weight"));
  VocabParallelEmbedding embed(ctx.ops, tp, emb);
  const VocabRange vr = embed.range();
  ctx.say_ranks("owns ids " + std::to_string(vr.start) + ".." + std::to_string(vr.start + vr.size - 1) +
                ": embed_tokens " + shape_of(emb.value) + ", lm_head " + shape_of(head.value));
  tp.reset_counts();
  const Tensor& x = embed.forward(batch.inputs);
  record(ctx, tp.counts(), n, "step5 embedding forward", "all_reduce", embedding_forward_cost(N, C));
  ctx.check(compare("embedding forward: masked lookup + all-reduce == serial lookup", x,
                    emb_ref.forward(ctx.ops.upload(batch.inputs)), 0.0));
  const Tensor dx = random_tensor(ctx.ops, lab.o, "step5.dx", {cfg.batch, cfg.seq, C});
  tp.reset_counts();
  embed.backward(dx);
  record(ctx, tp.counts(), n, "step5 embedding backward", "all_reduce", {});
  emb_ref.backward(dx);
  ctx.check(check_shard("embedding backward: shard grad == serial rows", emb.grad,
                        serial.params().get("embed_tokens.weight").grad, Split::rows, r, n, 1e-6));

  // --- the LM head and the cross-entropy -----------------------------------------------------
  nn::LmHead head_ref(ctx.ops, serial.params().get("lm_head.weight"));
  VocabParallelLmHead lm(ctx.ops, tp, head);
  const Tensor h = random_tensor(ctx.ops, lab.o, "step5.h", {cfg.batch, cfg.seq, C});
  tp.reset_counts();
  const Tensor& logits = lm.forward(h);
  const Tensor& logits_ref = head_ref.forward(h);
  ctx.check(check_shard("lm head: logits shard == serial columns", logits, logits_ref, Split::cols, r, n, 1e-6));
  const double loss = lm.loss(batch.targets);
  record(ctx, tp.counts(), n, "step5 loss (max, sum exp, target)", "all_reduce", loss_cost(N));
  const double loss_ref = head_ref.loss(ctx.ops.upload(batch.targets));
  CheckResult lc = compare("vocab-parallel cross-entropy == serial loss",
                           Tensor::from_vector(std::vector<float>{static_cast<float>(loss)}, {1}),
                           Tensor::from_vector(std::vector<float>{static_cast<float>(loss_ref)}, {1}), 1e-6);
  ctx.check(lc);
  ctx.narrator.say("loss " + fmt("%.7f", loss) + " (serial " + fmt("%.7f", loss_ref) + "). Bytes: 3 x 4N = " +
                   human_bytes(12.0 * N) + " per rank, vs gathering the logits: 4N(V - V/tp) = " +
                   human_bytes(4.0 * N * (V - V / n)) + " received per rank.");
  tp.reset_counts();
  const Tensor& dh = lm.backward();
  record(ctx, tp.counts(), n, "step5 lm head backward", "all_reduce", head_backward_cost(N, C));
  const Tensor& dh_ref = head_ref.backward();
  ctx.check(compare("lm head backward: dh == serial", dh, dh_ref, 1e-5));
  ctx.check(check_shard("lm head backward: shard grad == serial rows", head.grad,
                        serial.params().get("lm_head.weight").grad, Split::rows, r, n, 1e-5));
}

}  // namespace fivefold::ch03
