// SPDX-License-Identifier: MIT
// Pipeline point-to-point: posted sends, checked receives, counts per neighbour pair.
#include "chapters/04_pipeline_parallel/pp_link.hpp"

#include "common/check.hpp"

namespace fivefold::ch04 {

namespace {

constexpr int kHeaderTag = 1, kPayloadTag = 2;

Tensor header_of(Ops& ops, const Message& m) {
  return ops.upload(Tensor::from_vector(std::vector<std::int32_t>{m.kind, m.mb, m.vstage}, {3}));
}

}  // namespace

std::string describe(const Message& m) {
  if (m.kind == 'T') return "token " + std::to_string(m.vstage) + " of request " + std::to_string(m.mb);
  return std::string(m.kind == 'F' ? "activation" : "gradient") + " of microbatch " + std::to_string(m.mb) +
         " for virtual stage " + std::to_string(m.vstage);
}

void StageLink::send(const Tensor& t, int to, const Message& msg) {
  Pending p{header_of(*ops_, msg), t, nullptr, nullptr};
  {
    Uncounted quiet(*pp_);  // the header is bookkeeping, not the pipeline's traffic
    p.h = pp_->isend(p.header, to, kHeaderTag);
  }
  p.p = pp_->isend(p.payload, to, kPayloadTag);  // TUTORIAL: posted; the stage goes on at once
  OpCount& c = sent_[{pp_->rank(), to, msg.kind}];
  c.calls += 1;
  c.payload_bytes += static_cast<std::int64_t>(t.nbytes());
  pending_.push_back(std::move(p));
}

Tensor StageLink::recv(const Shape& shape, DType dtype, int from, const Message& msg) {
  Tensor header = Tensor::empty({3}, DType::i32, ops_->device());
  {
    Uncounted quiet(*pp_);
    pp_->recv(header, from, kHeaderTag);
  }
  const Tensor h = header.to(Device::host);
  const Message got{static_cast<char>(h.at<std::int32_t>(0)), h.at<std::int32_t>(1), h.at<std::int32_t>(2)};
  FIVEFOLD_CHECK(got.kind == msg.kind && got.mb == msg.mb && got.vstage == msg.vstage, "pipeline rank ", pp_->rank(),
                 " expected the ", describe(msg), " from rank ", from, " but rank ", from, " sent the ", describe(got),
                 ": the two ranks' schedules disagree on the order of their messages");
  Tensor t = Tensor::empty(shape, dtype, ops_->device());  // its own tensor: kept by the pass until its W
  pp_->recv(t, from, kPayloadTag);
  return t;
}

void StageLink::progress() {
  std::vector<Pending> open;
  for (Pending& p : pending_) {
    const bool h = p.h->test(), d = p.p->test();  // both tested: each call drives the transfer
    if (!(h && d)) open.push_back(std::move(p));
  }
  pending_ = std::move(open);
}

void StageLink::wait_all() {
  for (Pending& p : pending_) {
    p.h->wait();
    p.p->wait();
  }
  pending_.clear();
}

}  // namespace fivefold::ch04
