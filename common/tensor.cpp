// SPDX-License-Identifier: MIT
#include "common/tensor.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace fivefold {

namespace {
DeviceAllocator* g_device_allocator = nullptr;

// Per-device byte counters (index = Device): updated on every allocation and free.
struct Counters {
  std::atomic<std::int64_t> live{0}, peak{0}, allocations{0};
};
Counters g_counters[2];

Counters& counters(Device d) { return g_counters[static_cast<int>(d)]; }

void note_alloc(Device d, std::int64_t bytes) {
  Counters& c = counters(d);
  c.allocations.fetch_add(1, std::memory_order_relaxed);
  const std::int64_t now = c.live.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  std::int64_t peak = c.peak.load(std::memory_order_relaxed);
  while (now > peak && !c.peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void note_free(Device d, std::int64_t bytes) { counters(d).live.fetch_sub(bytes, std::memory_order_relaxed); }

DeviceAllocator& require_device_allocator() {
  FIVEFOLD_CHECK(g_device_allocator != nullptr,
                 "a CUDA tensor was requested but no CUDA backend is active; run with --backend cuda "
                 "on a CUDA build");
  return *g_device_allocator;
}
}  // namespace

std::size_t dtype_size(DType) { return 4; }
const char* dtype_name(DType t) { return t == DType::f32 ? "f32" : "i32"; }
const char* device_name(Device d) { return d == Device::host ? "host" : "cuda"; }

std::int64_t shape_numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

MemoryStats memory_stats(Device device) {
  const Counters& c = counters(device);
  MemoryStats m;
  m.live_bytes = c.live.load(std::memory_order_relaxed);
  m.peak_bytes = c.peak.load(std::memory_order_relaxed);
  m.allocations = c.allocations.load(std::memory_order_relaxed);
  return m;
}

void reset_peak(Device device) {
  Counters& c = counters(device);
  c.peak.store(c.live.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void set_device_allocator(DeviceAllocator* a) { g_device_allocator = a; }
DeviceAllocator* device_allocator() { return g_device_allocator; }

Tensor Tensor::empty(Shape shape, DType dtype, Device device) {
  for (auto d : shape) FIVEFOLD_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  // Always allocate at least one element so that a zero-size tensor is still "defined".
  const std::size_t bytes = std::max<std::size_t>(64, shape_numel(t.shape_) * dtype_size(dtype));
  // memory_stats() counts the requested bytes, not the rounding above.
  const std::int64_t counted = shape_numel(t.shape_) * static_cast<std::int64_t>(dtype_size(dtype));
  if (device == Device::host) {
    const std::size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    FIVEFOLD_CHECK(p != nullptr, "out of host memory allocating ", bytes, " bytes");
    note_alloc(Device::host, counted);  // before the shared_ptr, whose deleter runs even if it throws
    t.storage_ = std::shared_ptr<void>(p, [counted](void* q) {
      std::free(q);
      note_free(Device::host, counted);
    });
  } else {
    DeviceAllocator& a = require_device_allocator();
    void* p = a.allocate(bytes);
    note_alloc(Device::cuda, counted);
    t.storage_ = std::shared_ptr<void>(p, [&a, counted](void* q) {
      a.deallocate(q);
      note_free(Device::cuda, counted);
    });
  }
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  Tensor t = empty(std::move(shape), dtype, device);
  t.zero();
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, Shape shape) {
  FIVEFOLD_CHECK(static_cast<std::int64_t>(values.size()) == shape_numel(shape), values.size(),
                 " values do not fill shape ", shape_str(shape));
  Tensor t = empty(std::move(shape), DType::f32);
  if (!values.empty()) std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

Tensor Tensor::from_vector(const std::vector<std::int32_t>& values, Shape shape) {
  FIVEFOLD_CHECK(static_cast<std::int64_t>(values.size()) == shape_numel(shape), values.size(),
                 " values do not fill shape ", shape_str(shape));
  Tensor t = empty(std::move(shape), DType::i32);
  if (!values.empty()) std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

std::int64_t Tensor::dim(int i) const {
  const int n = ndim();
  const int j = i < 0 ? i + n : i;
  FIVEFOLD_CHECK(j >= 0 && j < n, "dimension ", i, " out of range for ", str());
  return shape_[j];
}

std::string Tensor::str() const {
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + "@" + device_name(device_);
}

Tensor Tensor::view(Shape shape) const {
  FIVEFOLD_CHECK(shape_numel(shape) == numel(), "cannot view ", str(), " as ", shape_str(shape),
                 ": element counts differ");
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::narrow(std::int64_t start, std::int64_t len) const {
  FIVEFOLD_CHECK(ndim() >= 1, "narrow needs at least one dimension, got ", str());
  FIVEFOLD_CHECK(start >= 0 && len >= 0 && start + len <= shape_[0], "narrow(", start, ", ", len,
                 ") out of range for ", str());
  const std::int64_t row = numel() / std::max<std::int64_t>(1, shape_[0]);
  Tensor t = *this;
  t.offset_ += static_cast<std::size_t>(start * row) * dtype_size(dtype_);
  t.shape_[0] = len;
  return t;
}

Tensor Tensor::flat(std::int64_t start, std::int64_t len) const {
  FIVEFOLD_CHECK(start >= 0 && len >= 0 && start + len <= numel(), "flat(", start, ", ", len,
                 ") out of range for ", str());
  Tensor t = *this;
  t.offset_ += static_cast<std::size_t>(start) * dtype_size(dtype_);
  t.shape_ = {len};
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  FIVEFOLD_CHECK(src.numel() == numel() && src.dtype() == dtype_, "copy_from: ", src.str(),
                 " does not fit into ", str());
  if (nbytes() == 0) return;
  if (device_ == Device::host && src.device_ == Device::host) {
    std::memmove(raw(), src.raw(), nbytes());
  } else {
    require_device_allocator().copy(raw(), device_, src.raw(), src.device_, nbytes());
  }
}

Tensor Tensor::clone() const { return to(device_); }

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this);
  return t;
}

void Tensor::zero() {
  if (nbytes() == 0) return;
  if (device_ == Device::host) {
    std::memset(raw(), 0, nbytes());
  } else {
    require_device_allocator().zero(raw(), nbytes());
  }
}

std::vector<float> Tensor::to_vector() const {
  FIVEFOLD_CHECK(dtype_ == DType::f32, "to_vector on ", str(), "; use to_ivector");
  std::vector<float> v(static_cast<std::size_t>(numel()));
  if (!defined()) return v;  // an undefined tensor holds no elements
  Tensor h = Tensor::from_vector(v, shape_);
  h.copy_from(*this);
  if (nbytes() > 0) std::memcpy(v.data(), h.raw(), nbytes());  // memcpy of nothing from a null pointer is UB
  return v;
}

std::vector<std::int32_t> Tensor::to_ivector() const {
  FIVEFOLD_CHECK(dtype_ == DType::i32, "to_ivector on ", str(), "; use to_vector");
  std::vector<std::int32_t> v(static_cast<std::size_t>(numel()));
  if (!defined()) return v;  // an undefined tensor holds no elements
  Tensor h = Tensor::from_vector(v, shape_);
  h.copy_from(*this);
  if (nbytes() > 0) std::memcpy(v.data(), h.raw(), nbytes());  // memcpy of nothing from a null pointer is UB
  return v;
}

void Tensor::check_host() const {
  FIVEFOLD_CHECK(device_ == Device::host, "element access on ", str(), "; copy it with .to(Device::host)");
}

}  // namespace fivefold
