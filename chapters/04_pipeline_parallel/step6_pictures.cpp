// SPDX-License-Identifier: MIT
// Step 6: the schedules as pictures, and their idle time: measured, replayed, closed form.
#include "chapters/04_pipeline_parallel/steps.hpp"

namespace fivefold::ch04 {

void step6_pictures(Context& ctx, Lab& lab) {
  const ModelConfig& cfg = lab.o.cfg;
  const int p = pp_group(ctx, lab).size(), m = lab.o.microbatches, v = lab.o.virtual_stages;
  ctx.narrator.say("The closed forms assume every stage takes the same time. Ours do not: stage 0 also embeds and the "
                   "last stage runs the final norm, lm_head and loss. Below, for each schedule: the idle share of the "
                   "step each rank measured in the last training step (1 - its busy time / the step's span, "
                   "messages included), the same schedule replayed on paper with the measured time of every one of "
                   "its passes (messages free), and the closed form.");
  Table t{"Idle share of the step per rank: measured | replayed with measured pass times | closed form",
          {"schedule", "rank", "busy (ms)", "measured", "replayed", "closed form"},
          {}};
  for (ScheduleKind k : {ScheduleKind::gpipe, ScheduleKind::one_f_one_b, ScheduleKind::interleaved, ScheduleKind::zb_h1}) {
    const int kv = k == ScheduleKind::interleaved ? v : 1;
    if (!wants(lab, k) || !check_layout(k, cfg.layers, p, m, kv, cfg.batch).empty()) continue;
    const std::string name = schedule_name(k);
    if (!lab.runs.count(name)) show_timeline(ctx, train(ctx, lab, k, m, kv, false));
    const TrainRun& run = lab.runs.at(name);
    const auto events = gather_events(ctx, run.last);
    std::map<std::tuple<int, char, int, int>, double> took;  // (rank, kind, mb, vstage) -> seconds
    for (int q = 0; q < p; ++q)
      for (const PassEvent& e : events[q]) took[{q, e.a.kind, e.a.mb, e.a.vstage}] = e.end - e.start;
    const Replay rp = replay(run.schedule, [&](int q, const Action& a) { return took.at({q, a.kind, a.mb, a.vstage}); });
    const double closed = bubble_formula(k, p, m, kv);
    nlohmann::json& bubble = ctx.summary.sections["pipeline"][name]["bubble"];
    const std::vector<double> idle = measured_idle(events);
    bubble["measured_per_rank"] = idle;
    bubble["replayed_per_rank"] = nlohmann::json::array();
    for (int q = 0; q < p; ++q) {
      double busy = 0.0;
      for (const PassEvent& e : events[q]) busy += e.end - e.start;
      bubble["replayed_per_rank"].push_back(rp.idle_share(q));
      t.add({name, std::to_string(q), fmt("%.2f", 1e3 * busy), fmt("%.3f", idle[q]),
             fmt("%.3f", rp.idle_share(q)),
             k == ScheduleKind::zb_h1 && m < p ? std::string("n/a") : fmt("%.3f", closed)});
    }
  }
  ctx.show(t);
  ctx.narrator.say("Where replayed and closed form differ, the passes are unequal: the end stages' extra work shows as "
                   "idle time on the others, and a backward is not twice a forward (nor B equal to W, which ZB-H1's "
                   "closed form assumes). Where measured exceeds replayed, time between passes is at work: waiting "
                   "for messages and for a core (the ranks share them here; sharing also stretches the pass times "
                   "themselves, which the replay does use). --trace shows the same passes as spans (category "
                   "\"pipeline\") with the layers inside them.");
}

}  // namespace fivefold::ch04
