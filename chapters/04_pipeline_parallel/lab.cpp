// SPDX-License-Identifier: MIT
// What chapter 04's steps share: the group, batches, config, the serial reference, gathers.
#include <sstream>

#include "chapters/04_pipeline_parallel/steps.hpp"
#include "common/check.hpp"
#include "nn/model.hpp"
#include "nn/train_step.hpp"

namespace fivefold::ch04 {

ModelConfig Options::default_config() {
  ModelConfig c;
  c.layers = 8;
  c.steps = 4;
  return c;
}

Communicator& pp_group(Context& ctx, Lab& lab) {
  if (!lab.pp) lab.pp = ctx.world.split(0, ctx.rank(), "pp");  // TUTORIAL: rank r is stage r
  return *lab.pp;
}

nn::Batch batch_of_step(const Options& o, int k) {
  return nn::stream_batch(o.cfg, k);
}

nlohmann::json config_json(const Options& o) {
  nlohmann::json j = o.cfg.to_json();
  j["pp"] = o.pp;
  j["microbatches"] = o.microbatches;
  j["virtual_stages"] = o.virtual_stages;
  j["schedule"] = o.schedule.empty() ? "all" : o.schedule;
  j["data"] = "stream";
  j["requests"] = o.requests;
  j["prompt"] = o.prompt;
  j["gen_tokens"] = o.gen_tokens;
  return j;
}

const SerialRun& serial(Context& ctx, Lab& lab) {
  if (lab.serial) return *lab.serial;
  lab.serial = nn::train_reference(ctx.ops, lab.o.cfg, [&](int k) { return batch_of_step(lab.o, k); });
  return *lab.serial;
}

bool wants(const Lab& lab, ScheduleKind k) { return lab.o.schedule.empty() || parse_schedule(lab.o.schedule) == k; }

ScheduleKind dump_schedule(const Lab& lab) {
  return lab.o.schedule.empty() ? ScheduleKind::one_f_one_b : parse_schedule(lab.o.schedule);
}

std::vector<double> measured_idle(const std::vector<std::vector<PassEvent>>& events) {
  double span = 0.0;
  for (const auto& rank_events : events)
    for (const PassEvent& e : rank_events) span = std::max(span, e.end);
  std::vector<double> idle;
  for (const auto& rank_events : events) {
    double busy = 0.0;
    for (const PassEvent& e : rank_events) busy += e.end - e.start;
    idle.push_back(span > 0 ? 1.0 - busy / span : 0.0);
  }
  return idle;
}

std::vector<std::vector<PassEvent>> gather_events(Context& ctx, const StepRecord& rec) {
  std::ostringstream line;
  line.precision(9);
  for (const PassEvent& e : rec.events)
    line << e.a.kind << ' ' << e.a.mb << ' ' << e.a.vstage << ' ' << e.start << ' ' << e.end << ' ';
  std::vector<std::vector<PassEvent>> all;
  for (const std::string& s : ctx.gather(line.str())) {
    std::istringstream in(s);
    std::vector<PassEvent> events;
    PassEvent e;
    while (in >> e.a.kind >> e.a.mb >> e.a.vstage >> e.start >> e.end) events.push_back(e);
    all.push_back(std::move(events));
  }
  return all;
}

}  // namespace fivefold::ch04
