// SPDX-License-Identifier: MIT
// Step 6: memory and communication, per stage. One training step of each stage in a
// communicator of its own; per rank we measure the bytes of parameters, gradients, optimizer
// states and communication buffers (every tensor the trainer allocated) and count what it
// communicated, and compare both with the formulas:
//   memory (textbook, Ψ params, n ranks): 0: 16Ψ  1: 8Ψ + 8Ψ/n  2: 4Ψ + 12Ψ/n  3: 16Ψ/n  (fp32 4+4+8)
//     and the ZeRO paper's mixed precision (2+2+12): 16Ψ, 4Ψ + 12Ψ/n, 2Ψ + 14Ψ/n, 16Ψ/n;
//   communication per step per rank: 2(n-1)/n·4Ψ bytes for stages 0-2, 3(n-1)/n·4Ψ for stage 3.
// The exact numbers differ from the textbook by the padding (each flat segment rounded up to a
// multiple of n), ZeRO-1's reduce-scatter output, the all-gather staging copy and the ZeRO-2/3
// workspaces; the counted calls and bytes must equal the exact prediction.
// Run: mpirun -np 4 build/cpu/bin/ch02_data_parallel --step 6
#include "chapters/02_data_parallel/dp_costs.hpp"
#include "chapters/02_data_parallel/steps.hpp"
#include "common/narrate.hpp"

namespace fivefold::ch02 {

void step6_costs(Context& ctx, Lab& lab) {
  if (skipped(ctx, lab, 6)) return;
  const Options& o = lab.o;
  const int n = ctx.size(), r = ctx.rank();
  const std::int64_t psi = FlatLayout(model_units(o.cfg), 1, false).numel();
  const BatchSplit split{o.cfg.batch, n};
  const nn::Batch local = local_batch(o, 0, split, r);
  Table mem{"Memory per rank (rank " + std::to_string(r) + " shown; n = " + std::to_string(n) + ", Ψ = " +
                std::to_string(psi) + ")",
            {"stage", "params", "grads", "AdamW m+v", "comm buffers", "measured total", "exact formula",
             "textbook fp32", "textbook 2+2+12"},
            {}};
  Table com{"Communication per step per rank (one step of each stage)",
            {"stage", "op", "calls", "payload", "ring bytes sent", "textbook", "padding"}, {}};
  for (int zero = 0; zero <= 3; ++zero) {
    const DpConfig dc = dp_config(o, zero);
    const std::string name = "cost-zero" + std::to_string(zero);
    std::unique_ptr<Communicator> comm = ctx.world.split(0, r, "dp/" + name);
    const std::unique_ptr<DpTrainer> made = DpTrainer::make(ctx.ops, *comm, o.cfg, dc);
    DpTrainer& trainer = *made;
    trainer.step(local, split.weight(r));
    const MemoryBytes m = trainer.memory(), want = exact_memory(dc, trainer.layout());
    const TextbookMemory fp32 = textbook_memory(zero, psi, n), mixed = textbook_memory(zero, psi, n, {2, 2, 12});
    mem.add({std::to_string(zero), human_bytes(double(m.params)), human_bytes(double(m.grads)),
             human_bytes(double(m.optimizer)), human_bytes(double(m.buffers)), std::to_string(m.total()),
             std::to_string(want.total()), fmt("%.0f", fp32.total()), fmt("%.0f", mixed.total())});
    const std::vector<float> got{float(m.params), float(m.grads), float(m.optimizer), float(m.buffers)};
    const std::vector<float> exp{float(want.params), float(want.grads), float(want.optimizer), float(want.buffers)};
    ctx.check(compare("memory per rank == exact formula (" + name + ")", Tensor::from_vector(got, {4}),
                      Tensor::from_vector(exp, {4}), 0.0));
    // Counted vs predicted, and bytes on the wire of ring collectives from the counted payload.
    const int nparams = static_cast<int>(nn::model_param_specs(o.cfg).size());
    const int buckets = static_cast<int>(trainer.buckets().size());
    double wire = 0;
    for (const OpPrediction& p : predicted_comm(dc, trainer.layout(), buckets, nparams, 1)) {
      const CommEntry e = Context::entry(comm->name(), p.op, comm->counts(), p.calls, p.payload_bytes);
      ctx.comm(e);
      const double w = ring_wire_bytes(p.op, double(e.payload_bytes), n);
      wire += w;
      com.add({std::to_string(zero), p.op, std::to_string(e.calls), std::to_string(e.payload_bytes), fmt("%.0f", w), "", ""});
    }
    const double book = textbook_comm_bytes(zero, psi, n);
    com.add({std::to_string(zero), "total", "", "", fmt("%.0f", wire), fmt("%.0f", book), fmt("%.0f", wire - book)});
  }
  ctx.narrator.table(mem);
  ctx.narrator.say("textbook = (P + G + O) bytes per parameter with the sharded terms divided by n, no padding and no\n"
                   "buffers. Our exact formula adds: padding of each flat segment to a multiple of n; ZeRO-1 keeps the\n"
                   "full gradient AND its reduce-scatter output (Ψ/n); ZeRO-1/2 copy the owned slice out before the\n"
                   "all-gather (an input must not alias the output); ZeRO-2 has one unit gradient workspace (two\n"
                   "when the reduce-scatter overlaps the next unit's backward) and ZeRO-3 as many, plus one or two\n"
                   "gather workspaces (two with prefetch); each workspace holds the largest unit.");
  ctx.narrator.table(com);
  ctx.narrator.say("payload = what the calls were handed (an all-gather counts its input block S/n); ring bytes sent =\n"
                   "2(n-1)/n S for an all-reduce, (n-1)/n S for a reduce-scatter or an all-gather of S. The padding\n"
                   "column is what the zeros of the padding add: exact, and 0 when n divides every segment.");
}

}  // namespace fivefold::ch02
