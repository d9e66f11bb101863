// SPDX-License-Identifier: MIT
// Exercise 3's check: communicator members against the groups of rank = t + tp*d, then one DP x
// TP training step on them against the serial model.
#include "chapters/07_hybrid_parallel/exercises/check_dp_tp.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "backends/runtime.hpp"
#include "chapters/exercise.hpp"
#include "chapters/03_tensor_parallel/tp_gather.hpp"
#include "nn/model.hpp"

namespace fivefold::ch07 {

namespace {

/// "" when @p comm holds exactly @p want in that order (an all_gather of world ranks over it).
std::string members_problem(Ops& ops, Communicator& comm, int me, const std::vector<int>& want, const char* name) {
  Tensor all = ops.empty({comm.size()}, DType::i32);
  comm.all_gather(ops.upload(Tensor::from_vector(std::vector<std::int32_t>{me}, {1})), all);
  const std::vector<std::int32_t> got = all.to_ivector();
  if (std::equal(got.begin(), got.end(), want.begin(), want.end())) return "";
  std::string g, w;
  for (int x : got) g += (g.empty() ? "" : ",") + std::to_string(x);
  for (int x : want) w += (w.empty() ? "" : ",") + std::to_string(x);
  return std::string("the ") + name + " communicator holds [" + g + "] (in rank order of the group); expected [" + w +
         "]";
}

}  // namespace

int check_dp_tp_split(int argc, char** argv, SplitDpTpFn fn) {
  static const char* const kHint1 =
      "the idea and the API\n"
      "  Write rank r as coordinates (t, d) on the dp x tp grid with tp fastest. The members of one TP\n"
      "  group hold the same rows of the batch: which coordinate do they share, and which one tells\n"
      "  them apart? The same question for a DP group (the ranks that hold the same shard).\n"
      "  API: Communicator::split(color, key, name) (backends/communicator.hpp): equal color, one\n"
      "  group; the key orders the ranks inside it.";
  static const char* const kHint2 =
      "the rule\n"
      "  t = r % tp, d = r / tp; TP group: split(color d, key t, \"tp\"); DP group: split(color t, key d, \"dp\").";
  return run_exercise(argc, argv, kHint1, kHint2, [fn](Communicator& world, Ops& ops) {
    const int n = world.size(), me = world.rank();
    const int tp = n % 2 == 0 ? 2 : 1, dp = n / tp, t = me % tp, d = me / tp;
    DpTpComms comms = fn(world, tp);
    std::string problem;
    if (!comms.tp || !comms.dp) problem = "a communicator is missing (return both tp and dp)";
    std::vector<int> tp_group, dp_group;  // rank = t + tp*d
    for (int i = 0; i < tp; ++i) tp_group.push_back(i + tp * d);
    for (int j = 0; j < dp; ++j) dp_group.push_back(t + tp * j);
    if (problem.empty()) problem = members_problem(ops, *comms.tp, me, tp_group, "tp");
    if (problem.empty()) problem = members_problem(ops, *comms.dp, me, dp_group, "dp");
    if (all_ranks_true(world, problem.empty())) {
      // The groups are right: one DP x TP step on them must give the serial gradients.
      ModelConfig cfg;
      cfg.seq = 16;
      cfg.batch = std::max(4, dp);
      cfg.steps = 1;
      DpTpTrainer trainer(ops, *comms.tp, *comms.dp, cfg, DpTpConfig{});
      const ch02::BatchSplit split{cfg.batch, dp};
      trainer.step(nn::synthetic_batch(cfg.seed, cfg.vocab, split.count(d), cfg.seq, split.offset(d)), split.weight(d));
      nn::Model serial(ops, cfg);
      const nn::Batch global = nn::synthetic_batch(cfg.seed, cfg.vocab, cfg.batch, cfg.seq);
      serial.zero_grad();
      serial.forward(global.inputs, global.targets);
      serial.backward();
      const CheckResult c = ch03::check_all_shards("gradients", trainer.model().params(), serial.params(), t, tp,
                                                   true, 1e-5);
      if (!c.passed)
        problem = "DP x TP gradients on your communicators differ from serial (relative error " +
                  std::to_string(c.max_rel_err) + ")";
    }
    return verdict(world, "dp_tp_split", problem.empty() ? problem : "rank " + std::to_string(me) + ": " + problem);
  });
}

}  // namespace fivefold::ch07
